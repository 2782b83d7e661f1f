"""Windowed resources' setup: their window rules, units and opening hours
(migration 0012). The holds' windows on the units are in `windows`."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from holdfast.platform.errors import DomainError, ErrorKind, failed_precondition
from holdfast.platform.records import from_record
from holdfast.scheduling.hours import OpeningHours, OpeningRange
from holdfast.scheduling.rules import WindowRules
from holdfast.scheduling.stored import MINUTE, hours_from_rows, rules_from_row
from services.booking.domain import ResourceUnit, WindowTerms
from services.booking.repository.base import PoolScope, TransactionScope, database_errors

_UNIT_COLUMNS = "id, resource_id, name, size, active, created_at"


def unit_of(row: asyncpg.Record) -> ResourceUnit:
    return from_record(ResourceUnit, row)


def terms_of(row: asyncpg.Record) -> WindowTerms:
    return WindowTerms(rules_from_row(row), row["price_period_minutes"] * MINUTE)


def _whole_minutes(rules: WindowRules, price_period: timedelta) -> list[int]:
    spans = (
        rules.min_duration,
        rules.max_duration,
        rules.granularity,
        rules.buffer_before,
        rules.buffer_after,
        rules.lead_time,
        price_period,
    )
    if any(span % MINUTE for span in spans) or price_period < timedelta(0):
        raise ValueError(f"window rules are stored in whole minutes, got {rules}, {price_period}")
    return [span // MINUTE for span in spans]


def not_windowed(
    resource_id: uuid.UUID, why: str = "is not a windowed resource of this tenant"
) -> DomainError:
    return failed_precondition(
        "RESOURCE_NOT_WINDOWED", f"resource {resource_id} {why}", {"resource_id": str(resource_id)}
    )


def _unit_exists(resource_id: uuid.UUID, name: str) -> DomainError:
    return DomainError(
        ErrorKind.ALREADY_EXISTS,
        "UNIT_EXISTS",
        f"resource {resource_id} already has a unit named {name!r}",
        {"resource_id": str(resource_id), "name": name},
    )


class UnitStatements(TransactionScope):
    async def make_windowed(
        self, resource_id: uuid.UUID, rules: WindowRules, price_period: timedelta = timedelta(0)
    ) -> None:
        """Makes the resource WINDOWED (unless it has slots) and sets its rules
        and price period (zero: the price is per booking)."""
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
            raise not_windowed(resource_id, "has slots: it stays slotted, without window rules")
        await self._conn.execute(
            """
            INSERT INTO resource_window_rules (
                tenant_id, resource_id, min_duration_minutes, max_duration_minutes,
                granularity_minutes, buffer_before_minutes, buffer_after_minutes,
                lead_time_minutes, price_period_minutes)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            ON CONFLICT (resource_id) DO UPDATE SET
                min_duration_minutes = EXCLUDED.min_duration_minutes,
                max_duration_minutes = EXCLUDED.max_duration_minutes,
                granularity_minutes = EXCLUDED.granularity_minutes,
                buffer_before_minutes = EXCLUDED.buffer_before_minutes,
                buffer_after_minutes = EXCLUDED.buffer_after_minutes,
                lead_time_minutes = EXCLUDED.lead_time_minutes,
                price_period_minutes = EXCLUDED.price_period_minutes,
                updated_at = now()
            """,
            self.tenant_id,
            resource_id,
            *_whole_minutes(rules, price_period),
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
            raise _unit_exists(resource_id, name) from None
        except asyncpg.ForeignKeyViolationError:
            raise not_windowed(resource_id) from None
        return unit_of(row)

    async def change_unit(
        self,
        unit_id: uuid.UUID,
        *,
        size: int | None = None,
        active: bool | None = None,
        name: str | None = None,
    ) -> ResourceUnit | None:
        """Renames, resizes, retires or restores a unit (its live windows
        stay); None if unknown. A name another unit of the resource has is
        UNIT_EXISTS, and nothing changes."""
        try:
            async with self._conn.transaction():
                row = await self._conn.fetchrow(
                    f"""
                    UPDATE resource_units SET size = coalesce($3, size),
                        active = coalesce($4, active), name = coalesce($5, name)
                    WHERE tenant_id = $1 AND id = $2
                    RETURNING {_UNIT_COLUMNS}
                    """,
                    self.tenant_id,
                    unit_id,
                    size,
                    active,
                    name,
                )
        except asyncpg.UniqueViolationError:
            resource_id = await self._conn.fetchval(
                "SELECT resource_id FROM resource_units WHERE tenant_id = $1 AND id = $2",
                self.tenant_id,
                unit_id,
            )
            raise _unit_exists(resource_id, name or "") from None
        return unit_of(row) if row else None

    async def lock_unit(self, unit_id: uuid.UUID) -> ResourceUnit | None:
        """The tenant's unit, locked against other changes until commit
        (placing windows on it, which only reads its key, is not held up)."""
        row = await self._conn.fetchrow(
            f"SELECT {_UNIT_COLUMNS} FROM resource_units"
            " WHERE tenant_id = $1 AND id = $2 FOR NO KEY UPDATE",
            self.tenant_id,
            unit_id,
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

    async def clear_hours_exception(self, resource_id: uuid.UUID, day: date) -> bool:
        """`day` follows the weekly hours again; False if it had no exception."""
        status: str = await self._conn.execute(
            "DELETE FROM resource_hour_exceptions"
            " WHERE tenant_id = $1 AND resource_id = $2 AND day = $3",
            self.tenant_id,
            resource_id,
            day,
        )
        return status != "DELETE 0"


class UnitReads(PoolScope):
    async def window_rules(self, tenant_id: str, resource_id: uuid.UUID) -> WindowRules | None:
        async with database_errors():
            row = await self._pool.fetchrow(
                "SELECT * FROM resource_window_rules WHERE tenant_id = $1 AND resource_id = $2",
                tenant_id,
                resource_id,
            )
        return rules_from_row(row) if row else None

    async def window_terms(self, tenant_id: str, resource_id: uuid.UUID) -> WindowTerms | None:
        """The rules and price period of a windowed resource; None for any other."""
        async with database_errors():
            row = await self._pool.fetchrow(
                "SELECT * FROM resource_window_rules WHERE tenant_id = $1 AND resource_id = $2",
                tenant_id,
                resource_id,
            )
        return terms_of(row) if row else None

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
        return hours_from_rows(zone, weekly_rows, exception_rows)
