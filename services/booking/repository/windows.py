"""Windowed resources: their rules, units and opening hours, and the unit
windows of holds (migration 0012).

Two live windows on one unit never overlap: the table's exclusion constraint
refuses the second, whoever races whom, and `place_window` turns that refusal
into the same SOLD_OUT a full slot gives. The guarded window is stored in
whole epoch seconds, rounded outwards, within `GUARD_RANGE`.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from holdfast.platform.errors import DomainError, ErrorKind, failed_precondition
from holdfast.platform.records import from_record
from holdfast.scheduling.hours import OpeningHours, OpeningRange
from holdfast.scheduling.intervals import Interval
from holdfast.scheduling.rules import WindowRules
from services.booking.domain import ResourceUnit, UnitWindow
from services.booking.repository.base import PoolScope, TransactionScope, database_errors

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
_MINUTE = timedelta(minutes=1)
# The seconds a guarded window may cover: the CHECK unit_windows_guard_bounds
# (what keeps one unit's windows off the next unit's in the exclusion encoding).
GUARD_RANGE = (0, 2**32 - 1)

# The first key of the transaction-scoped advisory lock on a unit (the second
# is its unit_key). Two transactions inserting overlapping windows at once can
# each find the other's uncommitted row and wait for it: a deadlock the server
# breaks only after deadlock_timeout, as an error. Placing windows on one unit
# one transaction at a time (until commit) makes the second find the first's
# committed row instead, and be refused at once.
_UNIT_LOCK_SPACE = 0x756E6974  # "unit" in ASCII; the two-key lock space, apart from bigint keys

_UNIT_COLUMNS = "id, resource_id, name, size, active, created_at"
_WINDOW_COLUMNS = "hold_id, unit_id, resource_id, starts_at, ends_at, guard_from, guard_until, live"


def _prefixed(alias: str, columns: str) -> str:
    return ", ".join(alias + column.strip() for column in columns.split(","))


def guard_seconds(guarded: Interval) -> tuple[int, int]:
    """The buffered window as epoch seconds [from, until), rounded outwards so
    the stored guard is never smaller than the one asked for."""
    start = (guarded.start - _EPOCH) // _SECOND
    end = -((_EPOCH - guarded.end) // _SECOND)
    if start < GUARD_RANGE[0] or end > GUARD_RANGE[1]:
        raise ValueError(f"a guarded window must lie in 1970-2106 UTC, got {guarded}")
    return start, end


def window_taken(unit: ResourceUnit, guarded: Interval) -> DomainError:
    """The refusal when the database finds the unit's buffered window taken."""
    return failed_precondition(
        "SOLD_OUT",
        f"unit {unit.name}: the window overlaps a live hold or booking (buffers included)",
        {
            "unit_id": str(unit.id),
            "unit_name": unit.name,
            "guarded_start": guarded.start.isoformat(),
            "guarded_end": guarded.end.isoformat(),
        },
    )


def unit_of(row: asyncpg.Record) -> ResourceUnit:
    return from_record(ResourceUnit, row)


def unit_window_of(row: asyncpg.Record) -> UnitWindow:
    guarded = Interval(
        datetime.fromtimestamp(row["guard_from"], UTC),
        datetime.fromtimestamp(row["guard_until"], UTC),
    )
    window = Interval(row["starts_at"], row["ends_at"])
    return from_record(UnitWindow, row, window=window, guarded=guarded)


def rules_of(row: asyncpg.Record) -> WindowRules:
    return WindowRules(
        min_duration=row["min_duration_minutes"] * _MINUTE,
        max_duration=row["max_duration_minutes"] * _MINUTE,
        granularity=row["granularity_minutes"] * _MINUTE,
        buffer_before=row["buffer_before_minutes"] * _MINUTE,
        buffer_after=row["buffer_after_minutes"] * _MINUTE,
        lead_time=row["lead_time_minutes"] * _MINUTE,
    )


def _whole_minutes(rules: WindowRules) -> list[int]:
    spans = (
        rules.min_duration,
        rules.max_duration,
        rules.granularity,
        rules.buffer_before,
        rules.buffer_after,
        rules.lead_time,
    )
    if any(span % _MINUTE for span in spans):
        raise ValueError(f"window rules are stored in whole minutes, got {rules}")
    return [span // _MINUTE for span in spans]


def _not_windowed(resource_id: uuid.UUID) -> DomainError:
    return failed_precondition(
        "RESOURCE_NOT_WINDOWED",
        f"resource {resource_id} is not a windowed resource of this tenant",
        {"resource_id": str(resource_id)},
    )


class WindowStatements(TransactionScope):
    async def make_windowed(self, resource_id: uuid.UUID, rules: WindowRules) -> None:
        """Makes the resource WINDOWED (unless it has slots) and sets its rules."""
        kind = await self._conn.fetchval(
            """
            UPDATE resources SET kind = 'WINDOWED'
            WHERE tenant_id = $1 AND id = $2
              AND NOT EXISTS (SELECT 1 FROM slots WHERE tenant_id = $1 AND resource_id = $2)
            RETURNING kind
            """,
            self.tenant_id,
            resource_id,
        )
        if kind is None:
            raise _not_windowed(resource_id)
        await self._conn.execute(
            """
            INSERT INTO resource_window_rules (
                tenant_id, resource_id, min_duration_minutes, max_duration_minutes,
                granularity_minutes, buffer_before_minutes, buffer_after_minutes,
                lead_time_minutes)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            ON CONFLICT (resource_id) DO UPDATE SET
                min_duration_minutes = EXCLUDED.min_duration_minutes,
                max_duration_minutes = EXCLUDED.max_duration_minutes,
                granularity_minutes = EXCLUDED.granularity_minutes,
                buffer_before_minutes = EXCLUDED.buffer_before_minutes,
                buffer_after_minutes = EXCLUDED.buffer_after_minutes,
                lead_time_minutes = EXCLUDED.lead_time_minutes,
                updated_at = now()
            """,
            self.tenant_id,
            resource_id,
            *_whole_minutes(rules),
        )

    async def add_unit(self, resource_id: uuid.UUID, name: str, size: int) -> ResourceUnit:
        try:
            async with self._conn.transaction():
                row = await self._conn.fetchrow(
                    f"""
                    INSERT INTO resource_units (tenant_id, resource_id, name, size)
                    VALUES ($1, $2, $3, $4)
                    RETURNING {_UNIT_COLUMNS}
                    """,
                    self.tenant_id,
                    resource_id,
                    name,
                    size,
                )
        except asyncpg.UniqueViolationError:
            raise DomainError(
                ErrorKind.ALREADY_EXISTS,
                "UNIT_EXISTS",
                f"resource {resource_id} already has a unit named {name!r}",
                {"resource_id": str(resource_id), "name": name},
            ) from None
        except asyncpg.ForeignKeyViolationError:
            raise _not_windowed(resource_id) from None
        return unit_of(row)

    async def change_unit(
        self, unit_id: uuid.UUID, *, size: int | None = None, active: bool | None = None
    ) -> ResourceUnit | None:
        """Resizes, retires or restores a unit (its live windows stay); None if unknown."""
        row = await self._conn.fetchrow(
            f"""
            UPDATE resource_units SET size = coalesce($3, size), active = coalesce($4, active)
            WHERE tenant_id = $1 AND id = $2
            RETURNING {_UNIT_COLUMNS}
            """,
            self.tenant_id,
            unit_id,
            size,
            active,
        )
        return unit_of(row) if row else None

    async def set_weekly_hours(
        self, resource_id: uuid.UUID, weekly: Mapping[int, Sequence[OpeningRange]]
    ) -> None:
        """Replaces the resource's weekly ranges (a weekday left out is closed)."""
        days = [(day, r.opens, r.closes) for day, ranges in weekly.items() for r in ranges]
        await self._conn.execute(
            "DELETE FROM resource_hours WHERE tenant_id = $1 AND resource_id = $2",
            self.tenant_id,
            resource_id,
        )
        await self._conn.execute(
            """
            INSERT INTO resource_hours (tenant_id, resource_id, weekday, opens, closes)
            SELECT $1, $2, * FROM unnest($3::smallint[], $4::time[], $5::time[])
            """,
            self.tenant_id,
            resource_id,
            [d[0] for d in days],
            [d[1] for d in days],
            [d[2] for d in days],
        )

    async def set_hours_exception(
        self, resource_id: uuid.UUID, day: date, ranges: Sequence[OpeningRange]
    ) -> None:
        """Replaces `day`'s hours by `ranges`; none closes the day."""
        await self._conn.execute(
            "DELETE FROM resource_hour_exceptions"
            " WHERE tenant_id = $1 AND resource_id = $2 AND day = $3",
            self.tenant_id,
            resource_id,
            day,
        )
        times: list[tuple[time | None, time | None]] = [(r.opens, r.closes) for r in ranges]
        await self._conn.execute(
            """
            INSERT INTO resource_hour_exceptions (tenant_id, resource_id, day, opens, closes)
            SELECT $1, $2, $3, * FROM unnest($4::time[], $5::time[])
            """,
            self.tenant_id,
            resource_id,
            day,
            [t[0] for t in times or [(None, None)]],
            [t[1] for t in times or [(None, None)]],
        )

    async def place_window(
        self, hold_id: uuid.UUID, unit: ResourceUnit, window: Interval, guarded: Interval
    ) -> UnitWindow:
        """Puts the hold's window on an active unit, or raises SOLD_OUT when a
        live window there overlaps its guarded one. Inside a savepoint, so the
        transaction stays usable to try another unit."""
        guard_from, guard_until = guard_seconds(guarded)
        try:
            async with self._conn.transaction():
                await self._conn.execute(
                    "SELECT pg_advisory_xact_lock($1, unit_key) FROM resource_units"
                    " WHERE tenant_id = $2 AND id = $3",
                    _UNIT_LOCK_SPACE,
                    self.tenant_id,
                    unit.id,
                )
                row = await self._conn.fetchrow(
                    f"""
                    INSERT INTO unit_windows (tenant_id, hold_id, resource_id, unit_id, unit_key,
                                              starts_at, ends_at, guard_from, guard_until)
                    SELECT $1, $2, resource_id, id, unit_key, $5, $6, $7, $8
                    FROM resource_units
                    WHERE tenant_id = $1 AND id = $3 AND resource_id = $4 AND active
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
            raise window_taken(unit, guarded) from None
        if row is None:
            raise failed_precondition(
                "UNIT_RETIRED",
                f"unit {unit.name} is retired or unknown",
                {"unit_id": str(unit.id)},
            )
        return unit_window_of(row)

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


class WindowReads(PoolScope):
    async def window_rules(self, tenant_id: str, resource_id: uuid.UUID) -> WindowRules | None:
        async with database_errors():
            row = await self._pool.fetchrow(
                "SELECT * FROM resource_window_rules WHERE tenant_id = $1 AND resource_id = $2",
                tenant_id,
                resource_id,
            )
        return rules_of(row) if row else None

    async def units(self, tenant_id: str, resource_id: uuid.UUID) -> list[ResourceUnit]:
        """The resource's units, retired ones too, best first (smallest, then by name)."""
        async with database_errors():
            rows = await self._pool.fetch(
                f"""
                SELECT {_UNIT_COLUMNS} FROM resource_units
                WHERE tenant_id = $1 AND resource_id = $2
                ORDER BY size, name
                """,
                tenant_id,
                resource_id,
            )
        return [unit_of(row) for row in rows]

    async def opening_hours(
        self, tenant_id: str, resource_id: uuid.UUID, zone: ZoneInfo
    ) -> OpeningHours:
        async with database_errors():
            weekly_rows = await self._pool.fetch(
                "SELECT weekday, opens, closes FROM resource_hours"
                " WHERE tenant_id = $1 AND resource_id = $2 ORDER BY weekday, opens",
                tenant_id,
                resource_id,
            )
            exception_rows = await self._pool.fetch(
                "SELECT day, opens, closes FROM resource_hour_exceptions"
                " WHERE tenant_id = $1 AND resource_id = $2 ORDER BY day, opens",
                tenant_id,
                resource_id,
            )
        weekly: dict[int, tuple[OpeningRange, ...]] = defaultdict(tuple)
        for row in weekly_rows:
            weekly[row["weekday"]] += (OpeningRange(row["opens"], row["closes"]),)
        exceptions: dict[date, tuple[OpeningRange, ...]] = defaultdict(tuple)
        for row in exception_rows:
            ranges = () if row["opens"] is None else (OpeningRange(row["opens"], row["closes"]),)
            exceptions[row["day"]] += ranges
        return OpeningHours(zone, dict(weekly), dict(exceptions))

    async def busy_windows(
        self, tenant_id: str, resource_id: uuid.UUID, span: Interval
    ) -> dict[str, list[Interval]]:
        """Per unit name, the guarded windows of live holds and bookings that
        touch `span` (what `holdfast.scheduling.starts` calls busy)."""
        guard_from, guard_until = guard_seconds(span)
        async with database_errors():
            rows = await self._pool.fetch(
                f"""
                SELECT u.name AS unit_name, {_prefixed("w.", _WINDOW_COLUMNS)}
                FROM unit_windows w JOIN resource_units u ON u.id = w.unit_id
                WHERE w.tenant_id = $1 AND w.resource_id = $2 AND w.live
                  AND w.guard_from < $4 AND w.guard_until > $3
                ORDER BY u.name, w.guard_from
                """,
                tenant_id,
                resource_id,
                guard_from,
                guard_until,
            )
        busy: dict[str, list[Interval]] = defaultdict(list)
        for row in rows:
            busy[row["unit_name"]].append(unit_window_of(row).guarded)
        return dict(busy)
