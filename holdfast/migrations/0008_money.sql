-- Money: a refund is final for its payment and is recorded before Stripe is
-- called; a payment attempt can fail for good; the reconciler looks at each
-- attempt (and each refund left unfinished) when it is due, backing off.

-- A refund row is written in the transaction that decides the refund, under
-- the hold's lock, as PENDING; Stripe's answer completes it (SUCCEEDED, with
-- Stripe's id) or ends it (FAILED, with Stripe's reason). A row in any status
-- is final for its payment: the payment never confirms a hold. Rows made
-- before this migration were all written after Stripe refunded a late payment.
ALTER TABLE refunds ALTER COLUMN refund_id DROP NOT NULL;
ALTER TABLE refunds
    ADD COLUMN status text NOT NULL DEFAULT 'SUCCEEDED'
        CHECK (status IN ('PENDING', 'SUCCEEDED', 'FAILED')),
    ADD COLUMN cause text NOT NULL DEFAULT 'LATE_PAYMENT'
        CHECK (cause IN ('LATE_PAYMENT', 'CANCELLATION', 'AT_STRIPE')),
    ADD COLUMN failure_reason text NOT NULL DEFAULT '',
    -- A PENDING refund is (re)tried at Stripe by the reconciler from
    -- next_attempt_at on, with backoff; the same idempotency key every time.
    ADD COLUMN attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE refunds ALTER COLUMN status DROP DEFAULT, ALTER COLUMN cause DROP DEFAULT;
CREATE INDEX refunds_pending_idx ON refunds (next_attempt_at) WHERE status = 'PENDING';

-- FAILED: the attempt ended without a payment and can never be paid (Stripe
-- refused to create its session, or its payment was declined), with why.
ALTER TABLE checkouts DROP CONSTRAINT checkouts_status_check;
ALTER TABLE checkouts ADD CONSTRAINT checkouts_status_check
    CHECK (status IN ('CREATING', 'OPEN', 'COMPLETE', 'EXPIRED', 'FAILED'));
ALTER TABLE checkouts
    ADD COLUMN failure_reason text NOT NULL DEFAULT '',
    -- The reconciler looks at an unresolved attempt from next_check_at on;
    -- each look pushes the next one back exponentially (`checks` so far), so
    -- attempts that cannot settle yet never crowd out the others.
    ADD COLUMN checks integer NOT NULL DEFAULT 0,
    ADD COLUMN next_check_at timestamptz NOT NULL DEFAULT now();
DROP INDEX checkouts_unresolved_idx;
CREATE INDEX checkouts_due_idx ON checkouts (next_check_at)
    WHERE status IN ('CREATING', 'OPEN');
