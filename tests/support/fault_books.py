"""The books after a fault test (tests/faults/), read back from Postgres:
nothing oversold or half-written, the outbox published, the holds made."""

from __future__ import annotations

import time

import asyncpg

from tests.support.availability import eventually


async def assert_books_balance(db: asyncpg.Pool) -> None:
    """Nothing oversold and nothing half-written, over the whole database:
    every slot's held and booked are exactly what its live holds and
    bookings add up to (and within capacity); every hold has its lines, and
    an audit row and an outbox row for its creation and for its current
    status; every request id that was kept has its answer."""
    slots = await db.fetch(
        """
        SELECT s.id, s.capacity, s.held, s.booked,
               coalesce(sum(h.quantity) FILTER (WHERE h.status = 'HELD'), 0) AS live_held,
               coalesce(sum(h.quantity) FILTER (WHERE h.status = 'CONFIRMED'), 0) AS live_booked
        FROM slots s
        LEFT JOIN hold_lines l ON l.slot_id = s.id
        LEFT JOIN holds h ON h.id = l.hold_id
        GROUP BY s.id
        """
    )
    oversold = [dict(r) for r in slots if r["held"] + r["booked"] > r["capacity"]]
    assert not oversold, f"oversold: {oversold}"
    adrift = [
        dict(r) for r in slots if (r["held"], r["booked"]) != (r["live_held"], r["live_booked"])
    ]
    assert not adrift, f"slot counts differ from their holds: {adrift}"
    holds = await db.fetch(
        """
        SELECT h.id, h.status,
               EXISTS (SELECT 1 FROM hold_lines l WHERE l.hold_id = h.id) AS lines,
               EXISTS (SELECT 1 FROM audit_log a
                       WHERE a.entity_id = h.id AND a.action = 'hold.created') AS created_audited,
               EXISTS (SELECT 1 FROM outbox o
                       WHERE o.dedupe_key = 'hold.created:' || h.id) AS created_announced,
               h.status = 'HELD' OR EXISTS (
                   SELECT 1 FROM audit_log a
                   WHERE a.entity_id = h.id AND a.action = 'hold.' || lower(h.status)
               ) AS status_audited,
               h.status = 'HELD' OR EXISTS (
                   SELECT 1 FROM outbox o
                   WHERE o.dedupe_key = 'hold.' || lower(h.status) || ':' || h.id
               ) AS status_announced
        FROM holds h
        """
    )
    checks = ("lines", "created_audited", "created_announced", "status_audited", "status_announced")
    half_written = [dict(r) for r in holds if not all(r[c] for c in checks)]
    assert not half_written, f"holds written in part: {half_written}"
    unanswered = await db.fetchval(
        "SELECT count(*) FROM idempotency_records WHERE response IS NULL"
    )
    assert unanswered == 0, f"{unanswered} request ids kept without their answer"


async def unpublished(db: asyncpg.Pool, topic: str | None = None) -> int:
    count: int = await db.fetchval(
        "SELECT count(*) FROM outbox"
        " WHERE published_at IS NULL AND ($1::text IS NULL OR topic = $1)",
        topic,
    )
    return count


async def assert_outbox_published(db: asyncpg.Pool, within: float) -> float:
    """Waits until every outbox row is published; returns how long it took."""
    started = time.monotonic()

    async def left() -> int:
        return await unpublished(db)

    try:
        await eventually(left, lambda n: n == 0, within=within, interval=0.1)
    except AssertionError:
        rows = await db.fetch(
            "SELECT id, topic, dedupe_key, attempts, next_attempt_at - now() AS due_in, last_error"
            " FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT 5"
        )
        raise AssertionError(
            f"outbox rows still unpublished after {within} s: {[dict(r) for r in rows]}"
        ) from None
    return time.monotonic() - started


async def database_hold_ids(db: asyncpg.Pool) -> set[str]:
    return {str(r["id"]) for r in await db.fetch("SELECT id FROM holds")}
