"""A new hold on slots in one statement: one round trip, no BEGIN or COMMIT,
and the slots' row locks held only while the database runs it.

The statement locks the slots in id order (the lock order of
`hold_changes`), and only if every one of them can take the quantity does it
claim the request id (with the response already in it), take the capacity
and write the hold, its lines, its audit row and its outbox row. Otherwise it
writes nothing and returns the slots as they stand under the lock, so the
caller can refuse at once or take the slower transaction (lapsed holds to
reclaim, a request id seen before).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import asyncpg

from holdfast.platform.records import from_record
from holdfast.platform.telemetry import current_traceparent
from services.booking.domain import Hold, RequestKey, Slot
from services.booking.repository.base import PoolScope, database_errors
from services.booking.repository.holds import hold_created_rows, hold_parameters
from services.booking.repository.sql import SLOT_COLUMNS, listed
from services.booking.rules import CREATE, counter_updates

# Every write below reads `going`: one row when the hold goes ahead, none
# otherwise (a data-modifying CTE always runs, so each must select its rows).
_PLACED_AUDIT, _PLACED_OUTBOX = hold_created_rows(source="FROM going")


@functools.cache
def place_hold_statement(slot_count: int) -> str:
    """The statement placing a hold on `slot_count` slots ($10), built once
    per count so that it is planned once per connection (`listed`)."""
    slot_ids = listed("$10::uuid[]", slot_count)
    return f"""
    WITH locked AS MATERIALIZED (
        SELECT {SLOT_COLUMNS} FROM slots
        WHERE tenant_id = $2 AND id = ANY({slot_ids})
        ORDER BY id
        FOR UPDATE
    ), fits AS (
        SELECT count(*) = $19 AND coalesce(bool_and(NOT closed
                                                    AND capacity - held - booked >= $5), false)
               AS ok
        FROM locked
    ), claim AS (
        INSERT INTO idempotency_records (tenant_id, request_id, method, request_hash, response)
        SELECT $2, $16, $20, $21, $17 FROM fits WHERE ok AND $16::text IS NOT NULL
        ON CONFLICT DO NOTHING
        RETURNING true
    ), going AS (
        SELECT true FROM fits WHERE ok AND ($16::text IS NULL OR EXISTS (SELECT FROM claim))
    ), taken AS (
        UPDATE slots SET {counter_updates(CREATE, "$5")}
        WHERE tenant_id = $2 AND id = ANY({slot_ids}) AND EXISTS (SELECT FROM going)
    ), hold AS (
        INSERT INTO holds (id, tenant_id, resource_id, status, quantity, customer_ref,
                           currency, total_minor, expires_at, created_at, updated_at)
        SELECT $1, $2, $3, '{CREATE.to_status}', $5, $6, $7, $8, $9, $4, $4 FROM going
    ), lines AS (
        INSERT INTO hold_lines (hold_id, tenant_id, slot_id, starts_at, ends_at, unit_minor)
        SELECT $1, $2, line.* FROM going, unnest($10::uuid[], $11::timestamptz[],
                                                   $12::timestamptz[], $13::bigint[]) line
    ), audit AS (
        {_PLACED_AUDIT}
    ), outbox AS (
        {_PLACED_OUTBOX}
    )
    SELECT l.*, EXISTS (SELECT FROM going) AS placed,
           CASE WHEN l.capacity - l.held - l.booked < $5 THEN EXISTS (
               SELECT 1 FROM hold_lines hl JOIN holds h ON h.id = hl.hold_id
               WHERE hl.slot_id = l.id AND h.status = 'HELD' AND h.expires_at <= now())
           ELSE false END AS has_expired_holds
    FROM locked l
    """


@dataclass(frozen=True)
class Placement:
    """What going a hold did: `placed`, or not and the slots as they stood
    under lock (before any change), with whether each has lapsed holds."""

    placed: bool
    slots: list[tuple[Slot, bool]]


def _slot_of(row: asyncpg.Record) -> tuple[Slot, bool]:
    return from_record(Slot, row), row["has_expired_holds"]


def placement_arguments(
    hold: Hold, tenant_id: str, actor: str, key: RequestKey | None, response: bytes | None
) -> tuple[object, ...]:
    """$1-$21 of `place_hold_statement`."""
    return (
        *hold_parameters(hold, tenant_id, actor, key, response, current_traceparent()),
        len(hold.lines),
        key.method if key else None,
        key.request_hash if key else None,
    )


class HoldPlacement(PoolScope):
    async def place_hold(
        self,
        tenant_id: str,
        actor: str,
        hold: Hold,
        key: RequestKey | None,
        response: bytes | None,
    ) -> Placement:
        """Places `hold` (made by `capacity.new_hold`) on its slots if every
        one can take its quantity, storing `response` under `key` with it;
        one statement, its own transaction."""
        async with database_errors():
            rows = await self._pool.fetch(
                place_hold_statement(len(hold.lines)),
                *placement_arguments(hold, tenant_id, actor, key, response),
            )
        placed = bool(rows) and rows[0]["placed"]
        if placed:
            self._after_commit()
        return Placement(placed, [_slot_of(row) for row in rows])
