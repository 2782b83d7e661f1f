-- The webhook service's inbox of Stripe events. An event is stored (keyed by
-- Stripe's event id, so a redelivery is a no-op) before Stripe is answered,
-- then applied by the processor; what happened is recorded on the row.
CREATE TABLE stripe_events (
    event_id         text PRIMARY KEY,
    type             text NOT NULL,
    -- The Stripe object the event is about (data.object.id): events of one
    -- object are applied one at a time.
    object_id        text NOT NULL,
    -- Stripe's `created` of the event: the order to apply one object's events in.
    created_at       timestamptz NOT NULL,
    livemode         boolean NOT NULL,
    -- The body exactly as received and verified.
    payload          text NOT NULL,
    status           text NOT NULL DEFAULT 'PENDING'
                     CHECK (status IN ('PENDING', 'FAILED', 'APPLIED', 'IGNORED', 'DEAD')),
    -- What applying it did, e.g. "confirmed", "refunded re_123", "ignored: ...".
    outcome          text NOT NULL DEFAULT '',
    attempts         integer NOT NULL DEFAULT 0,
    last_error       text,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    received_at      timestamptz NOT NULL DEFAULT now(),
    processed_at     timestamptz,
    correlation_id   text NOT NULL DEFAULT ''
);
-- The processor's queue: events still to apply, by when they are due.
CREATE INDEX stripe_events_due_idx ON stripe_events (next_attempt_at)
    WHERE status IN ('PENDING', 'FAILED');
-- The admin listing: newest first, optionally by status or type.
CREATE INDEX stripe_events_received_idx ON stripe_events (received_at DESC, event_id DESC);
CREATE INDEX stripe_events_status_idx ON stripe_events (status, received_at DESC);
