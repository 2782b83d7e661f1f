"""The availability service's SQL for windowed resources: reads only,
replica-safe, like `services.availability.repository`.

A resource's rules, units, hours and busy windows are read in one read-only
REPEATABLE READ transaction, so they come from one snapshot: a hold's window
and the unit it went to are never seen half (a standby runs such a
transaction too).
"""

from __future__ import annotations

import uuid
from datetime import date
from zoneinfo import ZoneInfo

import asyncpg

from holdfast.platform.db import database_unavailable
from holdfast.platform.errors import DomainError, failed_precondition, not_found
from holdfast.scheduling.intervals import Interval
from holdfast.scheduling.starts import Unit
from holdfast.scheduling.stored import (
    guard_seconds,
    guarded_interval,
    hours_from_rows,
    rules_from_row,
)
from services.availability.window_inputs import WindowInputs, busy_span, exception_days


def not_windowed(resource_id: uuid.UUID) -> DomainError:
    return failed_precondition(
        "RESOURCE_NOT_WINDOWED",
        f"resource {resource_id} sells slots, not windows: ask GetAvailability",
        {"resource_id": str(resource_id)},
    )


class WindowRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def read_inputs(
        self, tenant_id: str, resource_id: uuid.UUID, first: date, last: date
    ) -> WindowInputs:
        """What the tenant's windowed resource's availability on the dates
        `first` to `last` is computed from. NOT_FOUND for an unknown resource
        (or another tenant's), FAILED_PRECONDITION for a slotted one."""
        async with (
            database_unavailable(),
            self._pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            resource = await conn.fetchrow(
                """
                SELECT r.kind, r.time_zone, w.*
                FROM resources r
                LEFT JOIN resource_window_rules w
                  ON w.tenant_id = r.tenant_id AND w.resource_id = r.id
                WHERE r.tenant_id = $1 AND r.id = $2
                """,
                tenant_id,
                resource_id,
            )
            if resource is None:
                raise not_found("resource", str(resource_id))
            if resource["kind"] != "WINDOWED":
                raise not_windowed(resource_id)
            if resource["min_duration_minutes"] is None:
                raise failed_precondition(
                    "WINDOW_RULES_NOT_SET",
                    f"resource {resource_id} has no window rules yet",
                    {"resource_id": str(resource_id)},
                )
            return await _read_rest(conn, tenant_id, resource_id, resource, first, last)


async def _read_rest(
    conn: asyncpg.Connection,
    tenant_id: str,
    resource_id: uuid.UUID,
    resource: asyncpg.Record,
    first: date,
    last: date,
) -> WindowInputs:
    rules = rules_from_row(resource)
    zone = ZoneInfo(resource["time_zone"])
    unit_rows = await conn.fetch(
        "SELECT id, name, size FROM resource_units"
        " WHERE tenant_id = $1 AND resource_id = $2 AND active ORDER BY size, name",
        tenant_id,
        resource_id,
    )
    weekly = await conn.fetch(
        "SELECT weekday, opens, closes FROM resource_hours"
        " WHERE tenant_id = $1 AND resource_id = $2 ORDER BY weekday, opens",
        tenant_id,
        resource_id,
    )
    exceptions = await conn.fetch(
        "SELECT day, opens, closes FROM resource_hour_exceptions"
        " WHERE tenant_id = $1 AND resource_id = $2 AND day BETWEEN $3 AND $4"
        " ORDER BY day, opens",
        tenant_id,
        resource_id,
        *exception_days(rules, first, last),
    )
    guard_from, guard_until = guard_seconds(busy_span(zone, rules, first, last))
    busy_rows = await conn.fetch(
        """
        SELECT u.name, w.guard_from, w.guard_until
        FROM unit_windows w JOIN resource_units u ON u.id = w.unit_id
        WHERE w.tenant_id = $1 AND w.resource_id = $2 AND w.live AND u.active
          AND w.guard_from < $4 AND w.guard_until > $3
        ORDER BY u.name, w.guard_from
        """,
        tenant_id,
        resource_id,
        guard_from,
        guard_until,
    )
    hours = hours_from_rows(zone, weekly, exceptions)
    busy: dict[str, list[Interval]] = {}
    for row in busy_rows:
        busy.setdefault(row["name"], []).append(
            guarded_interval(row["guard_from"], row["guard_until"])
        )
    return WindowInputs(
        time_zone=zone.key,
        rules=rules,
        units=tuple(Unit(row["name"], row["size"]) for row in unit_rows),
        unit_ids={row["name"]: row["id"] for row in unit_rows},
        weekly=dict(hours.weekly),
        exceptions=dict(hours.exceptions),
        busy={name: tuple(windows) for name, windows in busy.items()},
    )
