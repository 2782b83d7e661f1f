"""All of the webhook service's SQL: the Stripe event inbox. Rows leave it
as the types of services.webhooks.inbox."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import asyncpg

from holdfast.platform.backoff import backoff_seconds_sql
from holdfast.platform.db import database_unavailable
from holdfast.platform.pagination import Cursor
from holdfast.platform.records import from_record
from services.webhooks.inbox import (
    FINAL_STATUSES,
    ClaimedEvent,
    NewEvent,
    Outcome,
    StoredEvent,
)
from services.webhooks.redaction import redact

_LIST_COLUMNS = (
    "event_id, type, object_id, created_at, status, outcome, attempts, last_error,"
    " next_attempt_at, received_at, processed_at, correlation_id"
)


# Deleted after the retention; a dead letter waits for an operator instead.
_EXPIRING_STATUSES = "('APPLIED', 'IGNORED')"


# A failed event is tried again after base ($5) * 2^(tries - 1) seconds, at
# most $6, jittered.
_RETRY_DELAY = backoff_seconds_sql("attempts", base="$5", cap="$6", jitter=True)


class Claim:
    """One event claimed for applying: its row is locked, and so is its Stripe
    object (a transaction-scoped advisory lock), until `finish` commits."""

    def __init__(self, conn: asyncpg.Connection, event: ClaimedEvent) -> None:
        self._conn = conn
        self.event = event

    async def finish(self, outcome: Outcome, retry_base: float, retry_max: float) -> None:
        """Records the outcome; a final one (not FAILED) also redacts the
        payload: a retry still has the body as received, nothing after it does."""
        final = outcome.status in FINAL_STATUSES
        await self._conn.execute(
            f"""
            UPDATE stripe_events
            SET status = $2, outcome = $3, last_error = $4,
                processed_at = CASE WHEN $2 IN ('APPLIED', 'IGNORED') THEN now() END,
                next_attempt_at = now() + make_interval(secs => {_RETRY_DELAY}),
                payload = coalesce($7, payload),
                redacted_at = CASE WHEN $7 IS NULL THEN redacted_at ELSE now() END
            WHERE event_id = $1
            """,
            self.event.event_id,
            outcome.status,
            outcome.outcome,
            outcome.error,
            retry_base,
            retry_max,
            redact(self.event.payload) if final else None,
        )


class EventRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def insert(self, event: NewEvent) -> bool:
        """Stores a verified event; False if it was already stored (a redelivery)."""
        async with database_unavailable():
            inserted = await self._pool.fetchval(
                """
                INSERT INTO stripe_events (event_id, type, object_id, created_at, livemode,
                                           payload, correlation_id)
                VALUES ($1, $2, $3, $4, $5, $6, $7)
                ON CONFLICT (event_id) DO NOTHING
                RETURNING true
                """,
                event.event_id,
                event.type,
                event.object_id,
                event.created_at,
                event.livemode,
                event.payload,
                event.correlation_id,
            )
        return bool(inserted)

    @asynccontextmanager
    async def claim(self) -> AsyncIterator[Claim | None]:
        """The oldest due event that is its object's earliest still to apply.

        The event's row lock keeps other workers (and replicas) off it; the
        advisory lock on its object keeps them off the object's other events,
        so one object's events apply one at a time, in Stripe's order (a later
        one waits while an earlier one backs off).
        """
        async with database_unavailable(), self._pool.acquire() as conn, conn.transaction():
            # Only the key is locked and sorted; the row (with its payload) is
            # read once chosen. Both steps use the partial indexes of 0005.
            row = await conn.fetchrow(
                """
                WITH next AS (
                    SELECT e.event_id FROM stripe_events e
                    WHERE e.status IN ('PENDING', 'FAILED') AND e.next_attempt_at <= now()
                      -- The object's earliest event still to apply: a scalar
                      -- subquery, one index probe per candidate, which the
                      -- planner cannot turn into a join over the whole queue.
                      AND (e.created_at, e.event_id) = (
                          SELECT first.created_at, first.event_id FROM stripe_events first
                          WHERE first.object_id = e.object_id
                            AND first.status IN ('PENDING', 'FAILED')
                          ORDER BY first.created_at, first.event_id
                          LIMIT 1)
                    ORDER BY e.created_at, e.event_id
                    LIMIT 1
                    FOR UPDATE OF e SKIP LOCKED
                )
                SELECT s.*, s.attempts + 1 AS attempt
                FROM stripe_events s JOIN next USING (event_id)
                """
            )
            if row is None or not await conn.fetchval(
                "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 7262))", row["object_id"]
            ):
                yield None
                return
            await conn.execute(
                "UPDATE stripe_events SET attempts = attempts + 1 WHERE event_id = $1",
                row["event_id"],
            )
            yield Claim(conn, _claimed(row))

    async def get(self, event_id: str) -> StoredEvent | None:
        async with database_unavailable():
            row = await self._pool.fetchrow(
                f"SELECT {_LIST_COLUMNS}, payload FROM stripe_events WHERE event_id = $1",
                event_id,
            )
        return None if row is None else _stored(row)

    async def list(
        self, statuses: Sequence[str], event_type: str, after: Cursor | None, limit: int
    ) -> list[StoredEvent]:
        """Newest first; without their payloads."""
        async with database_unavailable():
            rows = await self._pool.fetch(
                f"""
                SELECT {_LIST_COLUMNS} FROM stripe_events
                WHERE ($1::text[] IS NULL OR status = ANY($1::text[]))
                  AND ($2 = '' OR type = $2)
                  AND ($3::timestamptz IS NULL OR (received_at, event_id) < ($3, $4))
                ORDER BY received_at DESC, event_id DESC
                LIMIT $5
                """,
                list(statuses) or None,
                event_type,
                after.time if after else None,
                after.id if after else "",
                limit,
            )
        return [_stored(row) for row in rows]

    async def replay(self, event_id: str) -> StoredEvent | None:
        """FAILED or DEAD -> PENDING with a fresh retry budget; None if it was
        not in one of those states (see `get` for which)."""
        async with database_unavailable():
            row = await self._pool.fetchrow(
                f"""
                UPDATE stripe_events
                SET status = 'PENDING', attempts = 0, next_attempt_at = now()
                WHERE event_id = $1 AND status IN ('FAILED', 'DEAD')
                RETURNING {_LIST_COLUMNS}, payload
                """,
                event_id,
            )
        return None if row is None else _stored(row)

    async def redact_final(self, batch_size: int) -> int:
        """Redacts a batch of final events whose payload is still as received
        (stored before redaction existed); returns how many."""
        async with database_unavailable(), self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """
                SELECT event_id, payload FROM stripe_events
                WHERE redacted_at IS NULL AND status IN ('APPLIED', 'IGNORED', 'DEAD')
                ORDER BY received_at
                LIMIT $1
                FOR UPDATE SKIP LOCKED
                """,
                batch_size,
            )
            await conn.executemany(
                "UPDATE stripe_events SET payload = $2, redacted_at = now() WHERE event_id = $1",
                [(row["event_id"], redact(row["payload"])) for row in rows],
            )
        return len(rows)

    async def delete_expired(self, retention_days: int, batch_size: int) -> int:
        """Deletes a batch of applied or ignored events received more than
        `retention_days` ago, oldest first; returns how many."""
        async with database_unavailable():
            deleted: int = await self._pool.fetchval(
                f"""
                WITH old AS (
                    SELECT event_id FROM stripe_events
                    WHERE status IN {_EXPIRING_STATUSES}
                      AND received_at < now() - make_interval(days => $1)
                    ORDER BY received_at
                    LIMIT $2
                    FOR UPDATE SKIP LOCKED
                ), deleted AS (
                    DELETE FROM stripe_events e USING old
                    WHERE e.event_id = old.event_id RETURNING 1
                )
                SELECT count(*) FROM deleted
                """,
                retention_days,
                batch_size,
            )
        return deleted

    async def dead_letters(self) -> int:
        async with database_unavailable():
            count: int = await self._pool.fetchval(
                "SELECT count(*) FROM stripe_events WHERE status = 'DEAD'"
            )
        return count


def _claimed(row: asyncpg.Record) -> ClaimedEvent:
    return from_record(ClaimedEvent, row)


def _stored(row: asyncpg.Record) -> StoredEvent:
    """A row of _LIST_COLUMNS, and the payload if it was read."""
    return from_record(StoredEvent, row, payload=row.get("payload"))
