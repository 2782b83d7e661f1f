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
from holdfast.scheduling.intervals import Interval
from holdfast.scheduling.stored import guarded_interval
from services.booking.domain import (
    Hold,
    HoldFilter,
    HoldLine,
    HoldStatus,
    HoldWindow,
    RequestKey,
    in_time_order,
)
from services.booking.repository.base import PoolScope, TransactionScope, database_errors
from services.booking.repository.sql import HOLD_COLUMNS, availability_changed, insert_audit
from services.booking.rules import CREATE, counter_updates


def hold_created_rows(source: str | None = None) -> tuple[str, str]:
    """The audit and outbox statements of a created slot hold, on the hold
    statements' parameters ($1 hold, $2 tenant, $3 resource, $5 quantity,
    $10 slots, $14 actor, $15 correlation id, $18 traceparent); `source`
    makes them insert only for the rows it selects."""
    audit = insert_audit(
        tenant_id="$2",
        entity_type="'hold'",
        entity_id="$1",
        action=f"'{CREATE.audit_action}'",
        to_status=f"'{CREATE.to_status}'",
        actor="$14",
        correlation_id="$15",
        details="jsonb_build_object('quantity', $5::int, 'slots', $10::uuid[])",
        source=source,
    )
    outbox = availability_changed(
        change=f"'{CREATE.audit_action}'",
        resource_id="$3::uuid",
        slot_ids="$10::uuid[]",
        hold_id="$1::uuid",
        tenant_id="$2",
        dedupe_key=f"'{CREATE.audit_action}:' || $1::uuid::text",
        traceparent="$18",
        correlation_id="$15",
        source=source,
    )
    return audit, outbox


_CREATED_AUDIT, _CREATED_OUTBOX = hold_created_rows()


def hold_parameters(
    hold: Hold,
    tenant_id: str,
    actor: str,
    key: RequestKey | None,
    response: bytes | None,
    traceparent: str | None,
) -> tuple[object, ...]:
    """$1-$18 of a created hold's statements, as `hold_created_rows` names them."""
    lines = hold.lines
    return (
        hold.id,
        tenant_id,
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
        actor,
        current_correlation_id(),
        key.request_id if key else None,
        response,
        traceparent,
    )


# A hold's lines and its window, read with the hold: a slotted hold has lines
# and no window, a windowed one a window and no lines (hence the outer joins).
# The window is the hold's live one, else the last it had (a released or
# expired hold still says where it was).
_LINE_AND_WINDOW = """
    l.slot_id, l.starts_at, l.ends_at, l.unit_minor,
    w.unit_id AS window_unit_id, w.unit_name AS window_unit_name,
    w.starts_at AS window_start, w.ends_at AS window_end, w.guard_from, w.guard_until
    FROM holds h
    LEFT JOIN hold_lines l ON l.hold_id = h.id
    LEFT JOIN LATERAL (
        SELECT w.unit_id, u.name AS unit_name, w.starts_at, w.ends_at, w.guard_from, w.guard_until
        FROM unit_windows w JOIN resource_units u ON u.id = w.unit_id
        WHERE w.hold_id = h.id
        ORDER BY w.live DESC, w.updated_at DESC
        LIMIT 1
    ) w ON true
"""
_WINDOWS = """
    SELECT DISTINCT ON (w.hold_id) w.hold_id, w.unit_id AS window_unit_id,
           u.name AS window_unit_name, w.starts_at AS window_start, w.ends_at AS window_end,
           w.guard_from, w.guard_until
    FROM unit_windows w JOIN resource_units u ON u.id = w.unit_id
    WHERE w.hold_id = ANY($1::uuid[])
    ORDER BY w.hold_id, w.live DESC, w.updated_at DESC
"""


def hold_of(
    row: asyncpg.Record, lines: Iterable[HoldLine], window: HoldWindow | None = None
) -> Hold:
    return from_record(
        Hold,
        row,
        status=HoldStatus(row["status"]),
        payment_ref=row["payment_ref"] or "",
        lines=in_time_order(lines),
        window=window,
    )


def line_of(row: asyncpg.Record) -> HoldLine:
    return HoldLine(row["slot_id"], row["starts_at"], row["ends_at"], row["unit_minor"])


def window_of(row: asyncpg.Record) -> HoldWindow | None:
    """The window columns of `_LINE_AND_WINDOW` or `_WINDOWS`, if the hold has one."""
    if row["window_unit_id"] is None:
        return None
    return HoldWindow(
        Interval(row["window_start"], row["window_end"]),
        row["window_unit_id"],
        row["window_unit_name"],
        guarded_interval(row["guard_from"], row["guard_until"]),
    )


def _hold_with_parts(rows: list[asyncpg.Record]) -> Hold | None:
    """The hold of `_LINE_AND_WINDOW`'s rows (one per line, or one without)."""
    if not rows:
        return None
    lines = [line_of(row) for row in rows if row["slot_id"] is not None]
    return hold_of(rows[0], lines, window_of(rows[0]))


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
            *hold_parameters(hold, self.tenant_id, self.actor, key, response, self.traceparent),
        )

    async def lock_hold(self, hold_id: uuid.UUID) -> Hold | None:
        """Locks one of the tenant's holds and returns it."""
        rows = await self._conn.fetch(
            f"""
            SELECT {HOLD_COLUMNS}, {_LINE_AND_WINDOW}
            WHERE h.tenant_id = $1 AND h.id = $2
            FOR UPDATE OF h
            """,
            self.tenant_id,
            hold_id,
        )
        return _hold_with_parts(rows)


class HoldReads(PoolScope):
    async def get_hold(self, tenant_id: str, hold_id: uuid.UUID) -> Hold | None:
        async with database_errors():
            rows = await self._pool.fetch(
                f"""
                SELECT {HOLD_COLUMNS}, {_LINE_AND_WINDOW}
                WHERE h.tenant_id = $1 AND h.id = $2
                """,
                tenant_id,
                hold_id,
            )
        return _hold_with_parts(rows)

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
            hold_ids = [row["id"] for row in rows]
            line_rows = await conn.fetch(
                "SELECT hold_id, slot_id, starts_at, ends_at, unit_minor FROM hold_lines"
                " WHERE hold_id = ANY($1::uuid[])",
                hold_ids,
            )
            window_rows = await conn.fetch(_WINDOWS, hold_ids)
        lines: dict[uuid.UUID, list[HoldLine]] = {}
        for line in line_rows:
            lines.setdefault(line["hold_id"], []).append(line_of(line))
        windows = {row["hold_id"]: window_of(row) for row in window_rows}
        return [hold_of(row, lines.get(row["id"], []), windows.get(row["id"])) for row in rows]

    # --- the sweeper ---------------------------------------------------------
