"""Refunds: at most one per payment, decided with the hold locked."""

from __future__ import annotations

import asyncpg

from holdfast.platform.backoff import backoff_seconds_sql
from holdfast.platform.context import current_correlation_id
from holdfast.platform.records import from_record
from services.booking.domain import Hold, Refund, RefundCause, RefundStatus
from services.booking.repository.base import PoolScope, TransactionScope, database_errors
from services.booking.repository.sql import insert_audit

# The reconciler's retry of a PENDING refund: the n-th try comes
# base * 2^(n-1) seconds after the previous one, at most max seconds.
_REFUND_RETRY_DELAY = backoff_seconds_sql("r.attempts + 1", base="$2", cap="$3")


_REFUND_RECORDED_AUDIT = insert_audit(
    tenant_id="$2",
    entity_type="'hold'",
    entity_id="$3",
    action=(
        "CASE WHEN $8 = 'PENDING' THEN 'hold.refund_requested' ELSE 'hold.payment_refunded' END"
    ),
    from_status="$11",
    to_status="$11",
    actor="$12",
    reason="$7",
    correlation_id="$13",
    details=(
        "jsonb_build_object('payment_ref', $1::text, 'refund_id', $4::text,"
        " 'amount_minor', $5::bigint, 'cause', $9::text)"
    ),
    source="FROM refund",
)
_REFUND_MADE_AUDIT = insert_audit(
    tenant_id="$2",
    entity_type="'hold'",
    entity_id="$5",
    action="'hold.payment_refunded'",
    from_status="$6",
    to_status="$6",
    actor="$7",
    reason="coalesce($8, '')",
    correlation_id="$9",
    details=(
        "jsonb_build_object('payment_ref', $1::text, 'refund_id', $3::text,"
        " 'amount_minor', $4::bigint, 'cause', done.cause)"
    ),
    source="FROM done",
)
_REFUND_FAILED_AUDIT = insert_audit(
    tenant_id="$2",
    entity_type="'hold'",
    entity_id="$4",
    action="'hold.refund_failed'",
    from_status="$5",
    to_status="$5",
    actor="$6",
    reason="$3",
    correlation_id="$7",
    details="jsonb_build_object('payment_ref', $1::text, 'cause', failed.cause)",
    source="FROM failed",
)


def refund_of_row(row: asyncpg.Record) -> Refund:
    return from_record(
        Refund,
        row,
        cause=RefundCause(row["cause"]),
        status=RefundStatus(row["status"]),
        currency=row["currency"].strip(),
    )


class RefundStatements(TransactionScope):
    async def refund_of(self, payment_ref: str) -> Refund | None:
        """The tenant's refund of `payment_ref`, whatever its status. Every
        refund row is written with its hold locked, so under the hold's lock
        this answer cannot change for that hold."""
        row = await self._conn.fetchrow(
            "SELECT * FROM refunds WHERE payment_ref = $1 AND tenant_id = $2",
            payment_ref,
            self.tenant_id,
        )
        return refund_of_row(row) if row else None

    async def insert_refund(
        self,
        hold: Hold,
        payment_ref: str,
        cause: RefundCause,
        reason: str,
        *,
        retry_after_seconds: float = 0.0,
        refund_id: str | None = None,
    ) -> Refund | None:
        """Records the refund of `payment_ref` with the hold locked, with an
        audit row: PENDING (Stripe is to be asked; the reconciler asks after
        `retry_after_seconds` if no one finished it by then), or, given the
        `refund_id` Stripe already made (AT_STRIPE), SUCCEEDED. None if the
        payment already has a refund (of any hold: one refund per payment)."""
        status = RefundStatus.PENDING if refund_id is None else RefundStatus.SUCCEEDED
        if cause is RefundCause.AT_STRIPE:
            status = RefundStatus.SUCCEEDED
        row = await self._conn.fetchrow(
            f"""
            WITH refund AS (
                INSERT INTO refunds (payment_ref, tenant_id, hold_id, refund_id, amount_minor,
                                     currency, reason, status, cause, next_attempt_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,
                        now() + make_interval(secs => $10))
                ON CONFLICT (payment_ref) DO NOTHING
                RETURNING *
            ), audit AS (
                {_REFUND_RECORDED_AUDIT}
            )
            SELECT * FROM refund
            """,
            payment_ref,
            self.tenant_id,
            hold.id,
            refund_id,
            hold.total_minor,
            hold.currency,
            reason,
            status.value,
            cause.value,
            retry_after_seconds,
            hold.status.value,
            self.actor,
            current_correlation_id(),
        )
        return refund_of_row(row) if row else None

    async def complete_refund(
        self,
        hold: Hold,
        refund: Refund,
        refund_id: str | None,
        amount_minor: int,
        status_reason: str | None,
    ) -> bool:
        """Stripe made the refund: SUCCEEDED, with an audit row, once (False if
        it already was); `status_reason`, if given, becomes the hold's."""
        done: bool = await self._conn.fetchval(
            f"""
            WITH done AS (
                UPDATE refunds SET status = 'SUCCEEDED', refund_id = coalesce($3, refund_id),
                                   amount_minor = $4, failure_reason = '', updated_at = now()
                WHERE payment_ref = $1 AND status <> 'SUCCEEDED'
                RETURNING cause
            ), audit AS (
                {_REFUND_MADE_AUDIT}
            ), reason AS (
                UPDATE holds SET status_reason = $8, updated_at = now()
                WHERE id = $5 AND $8::text IS NOT NULL AND EXISTS (SELECT 1 FROM done)
            )
            SELECT EXISTS (SELECT 1 FROM done)
            """,
            refund.payment_ref,
            self.tenant_id,
            refund_id,
            amount_minor,
            hold.id,
            hold.status.value,
            self.actor,
            status_reason,
            current_correlation_id(),
        )
        return done

    async def fail_refund(self, hold: Hold, refund: Refund, message: str) -> bool:
        """Stripe refused the refund: FAILED with its reason, on the refund and
        the hold, with an audit row; once (False if it was no longer PENDING)."""
        failed: bool = await self._conn.fetchval(
            f"""
            WITH failed AS (
                UPDATE refunds SET status = 'FAILED', failure_reason = $3, updated_at = now()
                WHERE payment_ref = $1 AND status = 'PENDING'
                RETURNING cause
            ), audit AS (
                {_REFUND_FAILED_AUDIT}
            ), reason AS (
                UPDATE holds SET status_reason = 'refund refused by Stripe: ' || $3,
                                 updated_at = now()
                WHERE id = $4 AND EXISTS (SELECT 1 FROM failed)
            )
            SELECT EXISTS (SELECT 1 FROM failed)
            """,
            refund.payment_ref,
            self.tenant_id,
            message[:500],
            hold.id,
            hold.status.value,
            self.actor,
            current_correlation_id(),
        )
        return failed


class RefundReads(PoolScope):
    async def claim_due_refunds(
        self, limit: int, base_seconds: float, max_seconds: float
    ) -> list[Refund]:
        """Up to `limit` PENDING refunds whose retry time has come (their maker
        crashed or could not reach Stripe), oldest first, each one's next try
        scheduled with exponential backoff."""
        async with database_errors():
            rows = await self._pool.fetch(
                f"""
                WITH due AS (
                    SELECT payment_ref FROM refunds
                    WHERE status = 'PENDING' AND next_attempt_at <= now()
                    ORDER BY next_attempt_at
                    LIMIT $1
                    FOR UPDATE SKIP LOCKED
                )
                UPDATE refunds r
                SET attempts = r.attempts + 1,
                    next_attempt_at = now() + make_interval(secs => {_REFUND_RETRY_DELAY})
                FROM due WHERE r.payment_ref = due.payment_ref
                RETURNING r.*
                """,
                limit,
                base_seconds,
                max_seconds,
            )
        return [refund_of_row(row) for row in rows]

    async def find_refund(self, tenant_id: str, payment_ref: str) -> Refund | None:
        async with database_errors():
            row = await self._pool.fetchrow(
                "SELECT * FROM refunds WHERE payment_ref = $1 AND tenant_id = $2",
                payment_ref,
                tenant_id,
            )
        return refund_of_row(row) if row else None
