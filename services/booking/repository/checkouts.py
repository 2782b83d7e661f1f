"""Checkouts: a hold's payment attempts (Stripe Checkout Sessions)."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from holdfast.platform.backoff import backoff_seconds_sql
from holdfast.platform.records import from_record
from services.booking.domain import Checkout, CheckoutStatus, DueCheckout, HoldStatus
from services.booking.repository.base import PoolScope, TransactionScope, database_errors


def checkout_of(row: asyncpg.Record) -> Checkout:
    return from_record(Checkout, row, status=CheckoutStatus(row["status"]))


def _due(row: asyncpg.Record) -> DueCheckout:
    return DueCheckout(checkout_of(row), HoldStatus(row["hold_status"]), row["hold_expires_at"])


# The reconciler's backoff: the n-th look at an attempt
# comes base * 2^(n-1) seconds after the previous one, at most max seconds.
_CHECK_DELAY = backoff_seconds_sql("c.checks + 1", base="$2", cap="$3")


class CheckoutStatements(TransactionScope):
    async def latest_checkout(self, hold_id: uuid.UUID) -> Checkout | None:
        """The hold's newest payment attempt; call with the hold locked."""
        row = await self._conn.fetchrow(
            "SELECT * FROM checkouts WHERE hold_id = $1 ORDER BY attempt DESC LIMIT 1", hold_id
        )
        return checkout_of(row) if row else None

    async def insert_checkout(self, checkout: Checkout, next_check_at: datetime) -> None:
        """A new attempt, which the reconciler looks at from `next_check_at` on."""
        await self._conn.execute(
            """
            INSERT INTO checkouts (hold_id, attempt, tenant_id, status, amount_minor, currency,
                                   expires_at, success_url, cancel_url, traceparent,
                                   correlation_id, next_check_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
            """,
            checkout.hold_id,
            checkout.attempt,
            self.tenant_id,
            checkout.status.value,
            checkout.amount_minor,
            checkout.currency,
            checkout.expires_at,
            checkout.success_url,
            checkout.cancel_url,
            checkout.traceparent,
            checkout.correlation_id,
            next_check_at,
        )

    async def close_checkouts(self, hold_id: uuid.UUID, status: CheckoutStatus) -> None:
        """Ends the hold's unresolved attempts (there is at most one): nothing
        the reconciler still needs to look at."""
        await self._conn.execute(
            """
            UPDATE checkouts SET status = $2, updated_at = now()
            WHERE hold_id = $1 AND status IN ('CREATING', 'OPEN')
            """,
            hold_id,
            status.value,
        )

    async def now(self) -> datetime:
        now: datetime = await self._conn.fetchval("SELECT now()")
        return now


class CheckoutReads(PoolScope):
    async def record_session(self, checkout: Checkout, session_id: str, url: str) -> Checkout:
        """Stores what Stripe answered; the attempt is OPEN from now on (unless
        it was resolved meanwhile, e.g. the hold was confirmed)."""
        async with database_errors():
            row = await self._pool.fetchrow(
                """
                UPDATE checkouts SET session_id = $3, url = $4, updated_at = now(),
                    status = CASE WHEN status = 'CREATING' THEN 'OPEN' ELSE status END
                WHERE hold_id = $1 AND attempt = $2
                RETURNING *
                """,
                checkout.hold_id,
                checkout.attempt,
                session_id,
                url,
            )
        return checkout_of(row)

    async def set_session_status(self, session_id: str, status: CheckoutStatus) -> None:
        """Records how an attempt ended; a resolved attempt stays resolved."""
        async with database_errors():
            await self._pool.execute(
                """
                UPDATE checkouts SET status = $2, updated_at = now()
                WHERE session_id = $1 AND status IN ('CREATING', 'OPEN')
                """,
                session_id,
                status.value,
            )

    async def fail_attempt(self, checkout: Checkout, reason: str) -> None:
        """The attempt can never be paid (Stripe refused it, or its payment was
        declined): FAILED with why, unless it was resolved meanwhile."""
        async with database_errors():
            await self._pool.execute(
                """
                UPDATE checkouts SET status = 'FAILED', failure_reason = $3, updated_at = now()
                WHERE hold_id = $1 AND attempt = $2 AND status IN ('CREATING', 'OPEN')
                """,
                checkout.hold_id,
                checkout.attempt,
                reason[:500],
            )

    async def check_soon(self, session_id: str) -> None:
        """The reconciler looks at this attempt at its next pass."""
        async with database_errors():
            await self._pool.execute(
                "UPDATE checkouts SET next_check_at = now()"
                " WHERE session_id = $1 AND status IN ('CREATING', 'OPEN')",
                session_id,
            )

    async def checkout_by_session(self, session_id: str) -> DueCheckout | None:
        async with database_errors():
            row = await self._pool.fetchrow(
                """
                SELECT c.*, h.status AS hold_status, h.expires_at AS hold_expires_at
                FROM checkouts c JOIN holds h ON h.id = c.hold_id
                WHERE c.session_id = $1
                """,
                session_id,
            )
        return _due(row) if row else None

    async def claim_due_checkouts(
        self, limit: int, base_seconds: float, max_seconds: float
    ) -> list[DueCheckout]:
        """Up to `limit` unresolved attempts whose time to be looked at has
        come, fairly across tenants: each tenant's most overdue first, then
        each one's second, and so on, so one tenant's many attempts never
        crowd out another's. Claiming schedules each one's next look with
        exponential backoff, so what cannot settle yet makes way for the rest
        (and a second reconciler replica skips what this one claimed)."""
        async with database_errors():
            rows = await self._pool.fetch(
                f"""
                WITH due AS (
                    SELECT hold_id, attempt,
                           row_number() OVER (PARTITION BY tenant_id
                                              ORDER BY next_check_at, hold_id, attempt) AS turn,
                           next_check_at
                    FROM checkouts
                    WHERE status IN ('CREATING', 'OPEN') AND next_check_at <= now()
                ), picked AS (
                    SELECT hold_id, attempt, turn FROM due
                    ORDER BY turn, next_check_at, hold_id
                    LIMIT $1
                )
                UPDATE checkouts c
                SET checks = c.checks + 1,
                    next_check_at = now() + make_interval(secs => {_CHECK_DELAY})
                FROM picked p, holds h
                WHERE c.hold_id = p.hold_id AND c.attempt = p.attempt AND h.id = c.hold_id
                  AND c.status IN ('CREATING', 'OPEN') AND c.next_check_at <= now()
                RETURNING c.*, h.status AS hold_status, h.expires_at AS hold_expires_at, p.turn
                """,
                limit,
                base_seconds,
                max_seconds,
            )
        rows = sorted(rows, key=lambda row: (row["turn"], row["next_check_at"]))
        return [_due(row) for row in rows]
