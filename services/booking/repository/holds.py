"""Holds and their lines: writing a new hold, reading and locking holds.

How a hold changes status afterwards is in `hold_changes`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import asyncpg

from holdfast.platform.context import current_correlation_id
from holdfast.platform.pagination import Cursor
from holdfast.platform.records import from_record
from services.booking.domain import (
    Hold,
    HoldFilter,
    HoldLine,
    HoldStatus,
    RequestKey,
    in_time_order,
)
from services.booking.repository.base import PoolScope, TransactionScope, database_errors
from services.booking.repository.sql import HOLD_COLUMNS, availability_changed, insert_audit
from services.booking.rules import CREATE, counter_updates

_CREATED_AUDIT = insert_audit(
    tenant_id="$2",
    entity_type="'hold'",
    entity_id="$1",
    action=f"'{CREATE.audit_action}'",
    to_status=f"'{CREATE.to_status}'",
    actor="$14",
    correlation_id="$15",
    details="jsonb_build_object('quantity', $5::int, 'slots', $10::uuid[])",
)
_CREATED_OUTBOX = availability_changed(
    change=f"'{CREATE.audit_action}'",
    resource_id="$3::uuid",
    slot_ids="$10::uuid[]",
    hold_id="$1::uuid",
    tenant_id="$2",
    dedupe_key=f"'{CREATE.audit_action}:' || $1::uuid::text",
    traceparent="$18",
    correlation_id="$15",
)


def hold_of(row: asyncpg.Record, lines: Iterable[HoldLine]) -> Hold:
    return from_record(
        Hold,
        row,
        status=HoldStatus(row["status"]),
        payment_ref=row["payment_ref"] or "",
        lines=in_time_order(lines),
    )


def line_of(row: asyncpg.Record) -> HoldLine:
    return HoldLine(row["slot_id"], row["starts_at"], row["ends_at"], row["unit_minor"])


class HoldStatements(TransactionScope):
    async def insert_hold(
        self,
        hold: Hold,
        key: RequestKey | None,
        response: bytes | None,
    ) -> None:
        """Takes the hold's capacity and writes it, its lines, its audit row, its
        outbox row and its idempotency response, in one statement (one round
        trip under lock)."""
        lines = hold.lines
        await self._conn.execute(
            f"""
            WITH taken AS (
                UPDATE slots SET {counter_updates(CREATE, "$5")}
                WHERE tenant_id = $2 AND id = ANY($10::uuid[])
            ), hold AS (
                INSERT INTO holds (id, tenant_id, resource_id, status, quantity, customer_ref,
                                   currency, total_minor, expires_at, created_at, updated_at)
                VALUES ($1, $2, $3, '{CREATE.to_status}', $5, $6, $7, $8, $9, $4, $4)
            ), lines AS (
                INSERT INTO hold_lines (hold_id, tenant_id, slot_id, starts_at, ends_at, unit_minor)
                SELECT $1, $2, * FROM unnest($10::uuid[], $11::timestamptz[],
                                             $12::timestamptz[], $13::bigint[])
            ), audit AS (
                {_CREATED_AUDIT}
            ), outbox AS (
                {_CREATED_OUTBOX}
            )
            UPDATE idempotency_records SET response = $17
            WHERE tenant_id = $2 AND request_id = $16
            """,
            hold.id,
            self.tenant_id,
            hold.resource_id,
            hold.created_at,
            hold.quantity,
            hold.customer_ref,
            hold.currency,
            hold.total_minor,
            hold.expires_at,
            [line.slot_id for line in lines],
            [line.starts_at for line in lines],
            [line.ends_at for line in lines],
            [line.unit_minor for line in lines],
            self.actor,
            current_correlation_id(),
            key.request_id if key else None,
            response,
            self.traceparent,
        )

    async def lock_hold(self, hold_id: uuid.UUID) -> Hold | None:
        """Locks one of the tenant's holds and returns it."""
        rows = await self._conn.fetch(
            f"""
            SELECT {HOLD_COLUMNS}, l.slot_id, l.starts_at, l.ends_at, l.unit_minor
            FROM holds h JOIN hold_lines l ON l.hold_id = h.id
            WHERE h.tenant_id = $1 AND h.id = $2
            FOR UPDATE OF h
            """,
            self.tenant_id,
            hold_id,
        )
        return hold_of(rows[0], map(line_of, rows)) if rows else None


class HoldReads(PoolScope):
    async def get_hold(self, tenant_id: str, hold_id: uuid.UUID) -> Hold | None:
        async with database_errors():
            rows = await self._pool.fetch(
                f"""
                SELECT {HOLD_COLUMNS}, l.slot_id, l.starts_at, l.ends_at, l.unit_minor
                FROM holds h JOIN hold_lines l ON l.hold_id = h.id
                WHERE h.tenant_id = $1 AND h.id = $2
                """,
                tenant_id,
                hold_id,
            )
        return hold_of(rows[0], map(line_of, rows)) if rows else None

    async def list_holds(
        self, tenant_id: str, filters: HoldFilter, after: Cursor | None, limit: int
    ) -> list[Hold]:
        async with database_errors(), self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"""
                SELECT {HOLD_COLUMNS} FROM holds h
                WHERE h.tenant_id = $1
                  AND ($2::text[] IS NULL OR h.status = ANY($2::text[]))
                  AND ($3::uuid IS NULL OR h.resource_id = $3)
                  AND ($4::timestamptz IS NULL OR (h.created_at, h.id) < ($4, $5::uuid))
                ORDER BY h.created_at DESC, h.id DESC
                LIMIT $6
                """,
                tenant_id,
                [s.value for s in filters.statuses] or None,
                filters.resource_id,
                after.time if after else None,
                after.uuid if after else None,
                limit,
            )
            line_rows = await conn.fetch(
                "SELECT hold_id, slot_id, starts_at, ends_at, unit_minor FROM hold_lines"
                " WHERE hold_id = ANY($1::uuid[])",
                [row["id"] for row in rows],
            )
        lines: dict[uuid.UUID, list[HoldLine]] = {}
        for line in line_rows:
            lines.setdefault(line["hold_id"], []).append(line_of(line))
        return [hold_of(row, lines.get(row["id"], [])) for row in rows]

    # --- the sweeper ---------------------------------------------------------
