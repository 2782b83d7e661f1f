"""The outbox: the rows writers leave for the relay and the payment actions."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from holdfast.platform.backoff import backoff_seconds_sql
from holdfast.platform.streams import PAYMENTS_TOPIC
from services.booking.domain import OutboxRow
from services.booking.repository.base import database_errors

# The outbox holds two queues, claimed apart (each with its own index, see
# migration 0009): messages for the Redis streams, which the relay publishes,
# and actions at Stripe, which the payment actions carry out.
_MESSAGES = f"topic <> '{PAYMENTS_TOPIC}'"
_ACTIONS = f"topic = '{PAYMENTS_TOPIC}'"
# A failed delivery is tried again after base ($3) * 2^(tries - 1) seconds, at
# most $4, jittered so that failures do not return as one burst.
_OUTBOX_RETRY_DELAY = backoff_seconds_sql("attempts", base="$3", cap="$4", jitter=True)


class OutboxRepository:
    """The relay's side of the outbox: claim due rows, record how publishing went.

    Claiming takes a lease instead of holding a transaction open while Redis
    (or Stripe) is called: rows are marked as attempted and not due again
    until the lease runs out, so another relay (another replica) skips them;
    if this relay dies before recording the outcome, the rows become due
    again and are published again (at-least-once).
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def claim_due(self, batch_size: int, lease_seconds: float) -> list[OutboxRow]:
        """Due messages for the streams (every topic but payments)."""
        return await self._claim(_MESSAGES, batch_size, lease_seconds)

    async def claim_due_actions(self, limit: int, lease_seconds: float) -> list[OutboxRow]:
        """Due payment actions (the payments topic)."""
        return await self._claim(_ACTIONS, limit, lease_seconds)

    async def _claim(self, queue: str, limit: int, lease_seconds: float) -> list[OutboxRow]:
        async with database_errors():
            rows: list[asyncpg.Record] = await self._pool.fetch(
                f"""
                WITH due AS (
                    SELECT id FROM outbox
                    WHERE published_at IS NULL AND {queue} AND next_attempt_at <= now()
                    ORDER BY next_attempt_at, id
                    LIMIT $1
                    FOR UPDATE SKIP LOCKED
                )
                UPDATE outbox o SET attempts = o.attempts + 1,
                                    next_attempt_at = now() + make_interval(secs => $2)
                FROM due WHERE o.id = due.id
                RETURNING o.id, o.topic, o.message_key, o.tenant_id, o.payload::text AS payload,
                          o.dedupe_key, o.traceparent, o.correlation_id, o.created_at,
                          o.attempts
                """,
                limit,
                lease_seconds,
            )
        return sorted((OutboxRow(**row) for row in rows), key=lambda row: row.id)

    async def mark_published(self, ids: Sequence[int]) -> None:
        async with database_errors():
            await self._pool.execute(
                "UPDATE outbox SET published_at = now(), last_error = NULL"
                " WHERE id = ANY($1::bigint[])",
                list(ids),
            )

    async def mark_failed(
        self, ids: Sequence[int], error: str, base_seconds: float, max_seconds: float
    ) -> None:
        """Schedules another attempt with exponential backoff and jitter."""
        async with database_errors():
            await self._pool.execute(
                f"""
                UPDATE outbox
                SET last_error = $2,
                    next_attempt_at = now() + make_interval(secs => {_OUTBOX_RETRY_DELAY})
                WHERE id = ANY($1::bigint[])
                """,
                list(ids),
                error[:500],
                base_seconds,
                max_seconds,
            )

    async def release(self, ids: Sequence[int]) -> None:
        """Gives claimed rows back, due at once: their claimer stops (a
        shutdown) without knowing how they went, and another replica should
        not wait for the lease to take them."""
        async with database_errors():
            await self._pool.execute(
                "UPDATE outbox SET next_attempt_at = now()"
                " WHERE id = ANY($1::bigint[]) AND published_at IS NULL",
                list(ids),
            )

    async def release_claimed_messages(self) -> int:
        """Makes every message claimed but not yet published due at once.

        A relay calls it as it starts: claims it finds were made by a relay
        that died (this replica before a restart, most likely) and would
        otherwise wait out their lease. A live replica's claims are released
        too; they may then be published twice, which consumers take in their
        stride (delivery is at-least-once). Rows waiting for a retry after a
        failure keep their backoff."""
        async with database_errors():
            released: int = await self._pool.fetchval(
                f"""
                WITH released AS (
                    UPDATE outbox SET next_attempt_at = now()
                    WHERE published_at IS NULL AND {_MESSAGES} AND attempts > 0
                      AND last_error IS NULL AND next_attempt_at > now()
                    RETURNING 1
                )
                SELECT count(*) FROM released
                """
            )
        return released

    async def backlog(self) -> tuple[int, float]:
        """How many messages wait to be published, and the age in seconds of the oldest."""
        return await self._backlog(_MESSAGES)

    async def actions_backlog(self) -> tuple[int, float]:
        """How many payment actions wait to be carried out, and the age of the oldest."""
        return await self._backlog(_ACTIONS)

    async def _backlog(self, queue: str) -> tuple[int, float]:
        async with database_errors():
            row = await self._pool.fetchrow(
                f"""
                SELECT count(*) AS pending,
                       coalesce(extract(epoch FROM now() - min(created_at)), 0) AS oldest
                FROM outbox WHERE published_at IS NULL AND {queue}
                """
            )
        return int(row["pending"]), float(row["oldest"])

    async def prune_published(self, older_than_seconds: float, batch_size: int) -> int:
        """Deletes up to a batch of rows published before the retention; how many.
        Replicas pruning at once take different rows (SKIP LOCKED)."""
        async with database_errors():
            pruned: int = await self._pool.fetchval(
                """
                WITH old AS (
                    SELECT id FROM outbox
                    WHERE published_at < now() - make_interval(secs => $1)
                    LIMIT $2
                    FOR UPDATE SKIP LOCKED
                ), deleted AS (
                    DELETE FROM outbox o USING old WHERE o.id = old.id RETURNING 1
                )
                SELECT count(*) FROM deleted
                """,
                older_than_seconds,
                batch_size,
            )
        return pruned
