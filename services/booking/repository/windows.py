"""The windows of holds on the units of windowed resources (migration 0012);
the resources' rules, units and hours are in `units`.

Two live windows on one unit never overlap: the table's exclusion constraint
refuses the second, whoever races whom, and `place_window` turns that refusal
into the same SOLD_OUT a full slot gives. The guarded window is stored in
whole epoch seconds, rounded outwards, within `holdfast.scheduling.stored.GUARD_RANGE`.
"""

from __future__ import annotations

import uuid

import asyncpg

from holdfast.platform.errors import DomainError, failed_precondition
from holdfast.platform.records import from_record
from holdfast.scheduling.intervals import Interval
from holdfast.scheduling.stored import guard_seconds, guarded_interval
from services.booking.domain import HoldWindow, ResourceUnit, UnitWindow
from services.booking.repository.base import TransactionScope

# The first key of the transaction-scoped advisory lock on a unit (the second
# is its unit_key). Two transactions inserting overlapping windows at once can
# each find the other's uncommitted row and wait for it: a deadlock the server
# breaks only after deadlock_timeout, as an error. Placing windows on one unit
# one transaction at a time (until commit) makes the second find the first's
# committed row instead, and be refused at once.
_UNIT_LOCK_SPACE = 0x756E6974  # "unit" in ASCII; the two-key lock space, apart from bigint keys
_WINDOW_COLUMNS = "hold_id, unit_id, resource_id, starts_at, ends_at, guard_from, guard_until, live"


def _prefixed(alias: str, columns: str) -> str:
    return ", ".join(alias + column.strip() for column in columns.split(","))


def window_taken(unit_id: uuid.UUID, unit_name: str, guarded: Interval) -> DomainError:
    """The refusal when the database finds the unit's buffered window taken."""
    return failed_precondition(
        "SOLD_OUT",
        f"unit {unit_name}: the window overlaps a live hold or booking (buffers included)",
        {
            "unit_id": str(unit_id),
            "unit_name": unit_name,
            "guarded_start": guarded.start.isoformat(),
            "guarded_end": guarded.end.isoformat(),
        },
    )


def unit_window_of(row: asyncpg.Record) -> UnitWindow:
    guarded = guarded_interval(row["guard_from"], row["guard_until"])
    window = Interval(row["starts_at"], row["ends_at"])
    return from_record(UnitWindow, row, window=window, guarded=guarded)


class WindowStatements(TransactionScope):
    async def place_window(
        self, hold_id: uuid.UUID, unit: ResourceUnit, window: Interval, guarded: Interval
    ) -> UnitWindow:
        """Puts the hold's window on an active unit, or raises SOLD_OUT when a
        live window there overlaps its guarded one. Inside a savepoint, so the
        transaction stays usable to try another unit."""
        guard_from, guard_until = guard_seconds(guarded)
        try:
            async with self._conn.transaction():
                await self._lock_unit(unit.id)
                row = await self._conn.fetchrow(
                    f"""
                    INSERT INTO unit_windows (tenant_id, hold_id, resource_id, unit_id, unit_key,
                                              starts_at, ends_at, guard_from, guard_until)
                    SELECT $1, $2, resource_id, id, unit_key, $5, $6, $7, $8
                    FROM resource_units
                    WHERE tenant_id = $1 AND id = $3 AND resource_id = $4 AND active
                      -- A window of a hold that is no longer live would never
                      -- be freed (the holds trigger fires on a status change).
                      AND EXISTS (SELECT 1 FROM holds WHERE tenant_id = $1 AND id = $2
                                  AND status IN ('HELD', 'CONFIRMED'))
                    RETURNING {_WINDOW_COLUMNS}
                    """,
                    self.tenant_id,
                    hold_id,
                    unit.id,
                    unit.resource_id,
                    window.start,
                    window.end,
                    guard_from,
                    guard_until,
                )
        except asyncpg.ExclusionViolationError:
            raise window_taken(unit.id, unit.name, guarded) from None
        if row is None:
            raise failed_precondition(
                "WINDOW_NOT_PLACED",
                f"unit {unit.name} is retired or unknown, or hold {hold_id} is not live",
                {"unit_id": str(unit.id), "hold_id": str(hold_id)},
            )
        return unit_window_of(row)

    async def revive_window(self, hold_id: uuid.UUID, window: HoldWindow) -> UnitWindow:
        """Makes a hold's freed `window` live again on its unit (a late payment
        for a released or expired hold), or raises SOLD_OUT when a live window
        there now overlaps it, or WINDOW_NOT_PLACED when the unit is retired
        or the hold not live. Inside a savepoint, as `place_window`."""
        try:
            async with self._conn.transaction():
                await self._lock_unit(window.unit_id)
                row = await self._conn.fetchrow(
                    f"""
                    UPDATE unit_windows w SET live = true, updated_at = now()
                    FROM resource_units u
                    WHERE w.tenant_id = $1 AND w.hold_id = $2 AND w.unit_id = $3 AND NOT w.live
                      AND u.id = w.unit_id AND u.active
                      AND EXISTS (SELECT 1 FROM holds WHERE tenant_id = $1 AND id = $2
                                  AND status IN ('HELD', 'CONFIRMED'))
                    RETURNING {_prefixed("w.", _WINDOW_COLUMNS)}
                    """,
                    self.tenant_id,
                    hold_id,
                    window.unit_id,
                )
        except asyncpg.ExclusionViolationError:
            raise window_taken(window.unit_id, window.unit_name, window.guarded) from None
        if row is None:
            raise failed_precondition(
                "WINDOW_NOT_PLACED",
                f"unit {window.unit_name} is retired, or hold {hold_id} is not live",
                {"unit_id": str(window.unit_id), "hold_id": str(hold_id)},
            )
        return unit_window_of(row)

    async def _lock_unit(self, unit_id: uuid.UUID) -> None:
        await self._conn.execute(
            "SELECT pg_advisory_xact_lock($1, unit_key) FROM resource_units"
            " WHERE tenant_id = $2 AND id = $3",
            _UNIT_LOCK_SPACE,
            self.tenant_id,
            unit_id,
        )

    async def release_windows(self, hold_id: uuid.UUID) -> int:
        """Frees the hold's live windows (a hold leaving HELD/CONFIRMED frees
        them by itself, through the holds trigger); returns how many."""
        status = await self._conn.execute(
            """
            UPDATE unit_windows SET live = false, updated_at = now()
            WHERE tenant_id = $1 AND hold_id = $2 AND live
            """,
            self.tenant_id,
            hold_id,
        )
        return int(status.rsplit(" ", 1)[-1])
