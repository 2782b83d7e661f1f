"""Windowed resources for availability tests, set up and booked through the
booking service's repository (the RPCs for them are built apart), with the
change message the booking service writes for each windowed hold.

`WindowDesk` places and frees holds' windows the way the booking service
does: the hold, its window and an `availability` outbox row naming the
resource, in one transaction, and the relay woken after the commit. It also
works out what availability should answer from the database's own rows,
with `holdfast.scheduling`, for the tests to compare with the service.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
from google.protobuf.duration_pb2 import Duration

from holdfast.contracts.availability.v1 import availability_pb2
from holdfast.scheduling.hours import OpeningHours, OpeningRange
from holdfast.scheduling.intervals import Interval
from holdfast.scheduling.rules import WindowRules, buffered
from holdfast.scheduling.starts import Unit, best_unit, bookable_starts, free_intervals
from services.booking.domain import NewResource, ResourceUnit
from services.booking.repository import BookingRepository
from tests.support.availability import AvailabilityClient

EVERY_DAY = range(7)


@dataclass
class WindowedResource:
    id: uuid.UUID
    zone: ZoneInfo
    rules: WindowRules
    units: dict[str, ResourceUnit]
    weekly: dict[int, tuple[OpeningRange, ...]]
    exceptions: dict[date, tuple[OpeningRange, ...]] = field(default_factory=dict)

    @property
    def hours(self) -> OpeningHours:
        return OpeningHours(self.zone, self.weekly, self.exceptions)


def same_hours(days: Sequence[int], *ranges: OpeningRange) -> dict[int, tuple[OpeningRange, ...]]:
    return {day: ranges for day in days}


@dataclass
class WindowDesk:
    repo: BookingRepository
    db: asyncpg.Pool
    tenant: str

    @classmethod
    def on(cls, pool: asyncpg.Pool, wake_relay: Callable[[], None], tenant: str) -> WindowDesk:
        return cls(BookingRepository(pool, after_commit=wake_relay), pool, tenant)

    async def resource(
        self,
        zone: str,
        rules: WindowRules,
        sizes: Mapping[str, int],
        weekly: dict[int, tuple[OpeningRange, ...]],
    ) -> WindowedResource:
        async with self.repo.transaction(self.tenant, "test") as tx:
            resource = await tx.create_resource(NewResource("Dining room", zone, 0, "EUR", 0))
            await tx.make_windowed(resource.id, rules)
            units = [await tx.add_unit(resource.id, name, size) for name, size in sizes.items()]
            await tx.set_weekly_hours(resource.id, weekly)
        return WindowedResource(
            resource.id, ZoneInfo(zone), rules, {u.name: u for u in units}, weekly
        )

    async def place(self, resource: WindowedResource, unit: str, window: Interval) -> uuid.UUID:
        """A live hold with `window` on `unit`, and its change message."""
        async with self.repo.transaction(self.tenant, "test") as tx:
            conn: asyncpg.Connection = tx._conn
            hold_id: uuid.UUID = await conn.fetchval(
                """
                INSERT INTO holds (tenant_id, resource_id, status, quantity, currency,
                                   total_minor, expires_at)
                VALUES ($1, $2, 'HELD', 1, 'EUR', 0, now() + interval '1 hour')
                RETURNING id
                """,
                self.tenant,
                resource.id,
            )
            guarded = buffered(window, resource.rules)
            await tx.place_window(hold_id, resource.units[unit], window, guarded)
            await _changed(conn, self.tenant, resource.id, "hold.created", hold_id)
        return hold_id

    async def release(self, resource: WindowedResource, hold_id: uuid.UUID) -> None:
        """The hold released (its windows freed by the holds trigger), and its message."""
        async with self.repo.transaction(self.tenant, "test") as tx:
            conn: asyncpg.Connection = tx._conn
            await conn.execute(
                "UPDATE holds SET status = 'RELEASED' WHERE tenant_id = $1 AND id = $2",
                self.tenant,
                hold_id,
            )
            await _changed(conn, self.tenant, resource.id, "hold.released", hold_id)

    async def retire(self, resource: WindowedResource, unit: str) -> None:
        async with self.repo.transaction(self.tenant, "test") as tx:
            await tx.change_unit(resource.units[unit].id, active=False)
            await _changed(
                tx._conn, self.tenant, resource.id, "unit.retired", resource.units[unit].id
            )

    async def busy(self, resource: WindowedResource) -> dict[str, list[Interval]]:
        """What the database holds: the guarded windows of live holds, per unit."""
        rows = await self.db.fetch(
            """
            SELECT u.name, w.guard_from, w.guard_until
            FROM unit_windows w JOIN resource_units u ON u.id = w.unit_id
            WHERE w.tenant_id = $1 AND w.resource_id = $2 AND w.live
            """,
            self.tenant,
            resource.id,
        )
        busy: dict[str, list[Interval]] = {}
        for row in rows:
            busy.setdefault(row["name"], []).append(
                Interval(
                    datetime.fromtimestamp(row["guard_from"], UTC),
                    datetime.fromtimestamp(row["guard_until"], UTC),
                )
            )
        return busy

    async def active_units(self, resource: WindowedResource) -> list[Unit]:
        rows = await self.db.fetch(
            "SELECT name, size FROM resource_units WHERE resource_id = $1 AND active",
            resource.id,
        )
        return [Unit(row["name"], row["size"]) for row in rows]


async def _changed(
    conn: asyncpg.Connection, tenant: str, resource_id: uuid.UUID, change: str, about: uuid.UUID
) -> None:
    """The outbox row the booking service writes beside a windowed change."""
    await conn.execute(
        """
        INSERT INTO outbox (topic, message_key, tenant_id, payload, dedupe_key)
        VALUES ('availability', $1, $2, $3::jsonb, $4)
        """,
        str(resource_id),
        tenant,
        json.dumps({"change": change, "resource_id": str(resource_id), "slot_ids": []}),
        f"{change}:{about}",
    )


@dataclass(frozen=True)
class Expected:
    """What availability must answer, worked out from the rows."""

    starts: list[tuple[datetime, str]]
    free: dict[str, list[Interval]]


async def expected(
    desk: WindowDesk,
    resource: WindowedResource,
    first: date,
    last: date,
    party_size: int,
    duration: timedelta,
    now: datetime,
) -> Expected:
    units = await desk.active_units(resource)
    busy = await desk.busy(resource)
    hours, rules = resource.hours, resource.rules
    starts = []
    for start in bookable_starts(rules, hours, first, last, duration, party_size, units, busy, now):
        unit = best_unit(
            units, party_size, busy, buffered(Interval(start, start + duration), rules)
        )
        assert unit is not None
        starts.append((start, str(resource.units[unit.name].id)))
    free = free_intervals(hours, first, last, units, busy, party_size)
    return Expected(starts, free)


def seen(answer: availability_pb2.WindowAvailability) -> Expected:
    """The service's answer in the same terms."""
    return Expected(
        [(s.start_time.ToDatetime(UTC), s.unit_id) for s in answer.starts],
        {
            unit.name: [
                Interval(r.start_time.ToDatetime(UTC), r.end_time.ToDatetime(UTC))
                for r in unit.free
            ]
            for unit in answer.units
        },
    )


async def window_availability(
    client: AvailabilityClient,
    resource_id: uuid.UUID | str,
    first: date,
    last: date,
    party_size: int = 1,
    duration: timedelta | None = None,
    min_change_id: str = "",
) -> availability_pb2.WindowAvailability:
    request = availability_pb2.GetWindowAvailabilityRequest(
        resource_id=str(resource_id),
        first_date=first.isoformat(),
        last_date=last.isoformat(),
        party_size=party_size,
        min_change_id=min_change_id,
    )
    if duration is not None:
        request.duration.CopyFrom(Duration(seconds=int(duration.total_seconds())))
    response = await client.stub.GetWindowAvailability(request, metadata=client.md)
    answer: availability_pb2.WindowAvailability = response.availability
    return answer
