-- The outbox relay (availability messages to Redis) and the payment actions
-- (calls to Stripe) claim their rows apart, so a slow Stripe never delays a
-- message: one queue index each, in the order rows are due. They replace the
-- shared one, whose scan would walk past every due action (thousands while
-- Stripe is down) to reach the messages behind them.
CREATE INDEX outbox_pending_messages_idx ON outbox (next_attempt_at, id)
    WHERE published_at IS NULL AND topic <> 'payments';
CREATE INDEX outbox_pending_actions_idx ON outbox (next_attempt_at, id)
    WHERE published_at IS NULL AND topic = 'payments';
DROP INDEX outbox_pending_idx;

-- Stripe event payloads lose their personal data once the event is final
-- (APPLIED, IGNORED or DEAD): only an allow-list of fields is kept
-- (services.webhooks.redaction). NULL: the payload is still as received.
ALTER TABLE stripe_events ADD COLUMN redacted_at timestamptz;
-- Final events whose payload still has to be redacted (those stored before
-- this migration): the sweep that catches up on them.
CREATE INDEX stripe_events_unredacted_idx ON stripe_events (received_at)
    WHERE redacted_at IS NULL AND status IN ('APPLIED', 'IGNORED', 'DEAD');
-- Applied and ignored events are deleted after the retention, oldest first.
CREATE INDEX stripe_events_retention_idx ON stripe_events (received_at)
    WHERE status IN ('APPLIED', 'IGNORED');
