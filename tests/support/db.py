"""Reads of what the booking service wrote, straight from Postgres."""

from __future__ import annotations

import asyncpg


async def slot_row(db: asyncpg.Pool, slot_id: str) -> asyncpg.Record:
    row: asyncpg.Record = await db.fetchrow(
        "SELECT capacity, held, booked, closed FROM slots WHERE id = $1::uuid", slot_id
    )
    return row


async def audit_actions(db: asyncpg.Pool, tenant: str, entity_id: str) -> list[str]:
    rows = await db.fetch(
        "SELECT action FROM audit_log WHERE tenant_id = $1 AND entity_id = $2::uuid ORDER BY id",
        tenant,
        entity_id,
    )
    return [row["action"] for row in rows]


async def count_rows(db: asyncpg.Pool, tenant: str) -> dict[str, int]:
    """How many rows each table holds for a tenant: proof that nothing was written."""
    counts = {}
    tables = ("resources", "slots", "holds", "hold_lines", "idempotency_records", "audit_log")
    for table in (*tables, "outbox"):
        counts[table] = await db.fetchval(
            f"SELECT count(*) FROM {table} WHERE tenant_id = $1",
            tenant,
        )
    return counts
