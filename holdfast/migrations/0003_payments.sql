-- Payments: the Stripe Checkout Sessions of each hold, one per payment
-- attempt, and the refunds of payments that could not become bookings.

CREATE TABLE checkouts (
    hold_id      uuid NOT NULL REFERENCES holds (id),
    -- 1, 2, ...: a new attempt (and Stripe idempotency key) only after the
    -- previous session expired; a retry of the same attempt reuses its key.
    attempt      integer NOT NULL CHECK (attempt > 0),
    tenant_id    text NOT NULL,
    status       text NOT NULL CHECK (status IN ('CREATING', 'OPEN', 'COMPLETE', 'EXPIRED')),
    -- Fixed when the attempt starts, so a retried create sends Stripe the very
    -- same parameters (Stripe refuses a reused key with other parameters).
    amount_minor bigint NOT NULL CHECK (amount_minor >= 0),
    currency     char(3) NOT NULL,
    expires_at   timestamptz NOT NULL,
    success_url  text NOT NULL,
    cancel_url   text NOT NULL,
    -- The trace of the request that started the attempt, sent in the
    -- session's metadata so the webhook's processing links back to it.
    traceparent  text,
    -- Known once Stripe answered.
    session_id   text UNIQUE,
    url          text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (hold_id, attempt)
);
-- The reconciler: attempts still unresolved, by when they lapse.
CREATE INDEX checkouts_unresolved_idx ON checkouts (expires_at)
    WHERE status IN ('CREATING', 'OPEN');

-- One refund per payment: the primary key makes a second refund of the same
-- payment impossible, whoever (webhook processor, reconciler) asks.
CREATE TABLE refunds (
    payment_ref   text PRIMARY KEY,
    tenant_id     text NOT NULL,
    hold_id       uuid NOT NULL REFERENCES holds (id),
    refund_id     text NOT NULL,
    amount_minor  bigint NOT NULL,
    currency      char(3) NOT NULL,
    reason        text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refunds_hold_idx ON refunds (hold_id);
