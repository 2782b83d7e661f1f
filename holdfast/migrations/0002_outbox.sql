-- Transactional outbox: every change that moves availability writes a row here
-- in the same transaction as the change. The booking service's relay publishes
-- pending rows to a Redis Stream and marks them published (at-least-once;
-- consumers are idempotent), so no invalidation is lost when Redis or the
-- relay dies between the commit and the publish.
CREATE TABLE outbox (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic            text NOT NULL,
    -- What the message is about (for availability: the resource id); consumers
    -- invalidate by it.
    message_key      text NOT NULL,
    tenant_id        text NOT NULL,
    payload          jsonb NOT NULL,
    -- Names the change itself (e.g. "hold.created:<hold id>"), so a consumer
    -- can recognise a message the relay delivered twice.
    dedupe_key       text NOT NULL UNIQUE,
    -- The W3C trace context of the request that made the change, so the relay
    -- and the consumers can link their work to its trace.
    traceparent      text,
    correlation_id   text NOT NULL DEFAULT '',
    -- clock_timestamp, not now(): the invalidation lag is measured from here,
    -- and the statement runs at the end of its (short) transaction.
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    published_at     timestamptz,
    last_error       text
);
-- The relay's queue: only unpublished rows, in the order they are due.
CREATE INDEX outbox_pending_idx ON outbox (next_attempt_at, id) WHERE published_at IS NULL;
-- Pruning published rows.
CREATE INDEX outbox_published_idx ON outbox (published_at) WHERE published_at IS NOT NULL;
