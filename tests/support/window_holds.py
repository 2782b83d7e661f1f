"""Windowed resources in tests: set up through the booking repository (its
units, hours and rules), held over real gRPC with a window, and what the
database holds of their windows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import asyncpg
from google.protobuf.duration_pb2 import Duration

from holdfast.contracts.booking.v1 import booking_pb2
from holdfast.platform.proto_time import time_range
from holdfast.scheduling.hours import OpeningRange
from holdfast.scheduling.rules import WindowRules
from services.booking.domain import NewResource
from services.booking.repository import BookingRepository
from tests.support.booking import BookingClient

# A Monday evening far enough ahead that no lead time reaches it.
EVENING = datetime(2031, 6, 2, 17, 0, tzinfo=UTC)
TWO_HOURS = timedelta(hours=2)
TURNOVER = timedelta(minutes=15)
# Seatings of 30 minutes to 4 hours on the quarter hour, 15 minutes cleared after.
SEATINGS = WindowRules(
    min_duration=timedelta(minutes=30),
    max_duration=timedelta(hours=4),
    granularity=timedelta(minutes=15),
    buffer_after=TURNOVER,
)
ALL_DAY = {day: (OpeningRange(time(0), time(0)),) for day in range(7)}
TABLES = {"T2": 2, "T4": 4, "T6": 6}


@dataclass
class Windowed:
    """A windowed resource and its units' ids by name."""

    resource_id: str
    units: dict[str, str]


async def windowed_resource(
    db: asyncpg.Pool,
    tenant: str,
    *,
    units: dict[str, int] | None = None,
    rules: WindowRules = SEATINGS,
    weekly: Mapping[int, Sequence[OpeningRange]] | None = None,
    price_minor: int = 2000,
    price_period_minutes: int = 0,
    zone: str = "Europe/Paris",
) -> Windowed:
    """A windowed resource (a dining room of three tables by default, open
    all day, every day), written as the inventory would write it."""
    repo = BookingRepository(db)
    async with repo.transaction(tenant, "test") as tx:
        resource = await tx.create_resource(NewResource("Dining room", zone, price_minor, "EUR", 0))
        await tx.make_windowed(resource.id, rules)
        added = [
            await tx.add_unit(resource.id, name, size)
            for name, size in (TABLES if units is None else units).items()
        ]
        await tx.set_weekly_hours(resource.id, ALL_DAY if weekly is None else weekly)
    if price_period_minutes:
        await db.execute(
            "UPDATE resource_window_rules SET price_period_minutes = $2 WHERE resource_id = $1",
            resource.id,
            price_period_minutes,
        )
    return Windowed(str(resource.id), {unit.name: str(unit.id) for unit in added})


def window_request(
    resource_id: str,
    start: datetime,
    end: datetime,
    *,
    party_size: int = 0,
    unit_id: str = "",
    request_id: str = "",
    ttl_seconds: int | None = None,
    customer_ref: str = "party-1",
) -> booking_pb2.CreateHoldRequest:
    request = booking_pb2.CreateHoldRequest(
        resource_id=resource_id,
        window=time_range(start, end),
        party_size=party_size,
        unit_id=unit_id,
        customer_ref=customer_ref,
        request_id=request_id,
    )
    if ttl_seconds is not None:
        request.ttl.CopyFrom(Duration(seconds=ttl_seconds))
    return request


async def window_hold(
    client: BookingClient,
    resource_id: str,
    start: datetime = EVENING,
    end: datetime | None = None,
    **fields: object,
) -> booking_pb2.Hold:
    """A hold on the window [start, end) (two hours by default)."""
    request = window_request(resource_id, start, end or start + TWO_HOURS, **fields)  # type: ignore[arg-type]
    hold: booking_pb2.Hold = (await client.booking.CreateHold(request, metadata=client.md)).hold
    return hold


async def live_windows(db: asyncpg.Pool, tenant: str) -> dict[str, str]:
    """The tenant's live windows: hold id -> unit name."""
    rows = await db.fetch(
        """
        SELECT w.hold_id, u.name FROM unit_windows w JOIN resource_units u ON u.id = w.unit_id
        WHERE w.tenant_id = $1 AND w.live
        """,
        tenant,
    )
    return {str(row["hold_id"]): row["name"] for row in rows}


async def overlapping_live_windows(db: asyncpg.Pool, tenant: str) -> int:
    """Pairs of live windows on one unit whose buffered windows overlap,
    worked out from the stored times and the resource's buffers with
    tstzrange, not from the exclusion constraint's encoding."""
    count: int = await db.fetchval(
        """
        WITH guarded AS (
            SELECT w.hold_id, w.unit_id,
                   tstzrange(w.starts_at - make_interval(mins => r.buffer_before_minutes),
                             w.ends_at + make_interval(mins => r.buffer_after_minutes),
                             '[)') AS span,
                   tstzrange(to_timestamp(w.guard_from), to_timestamp(w.guard_until), '[)')
                       AS stored
            FROM unit_windows w JOIN resource_window_rules r ON r.resource_id = w.resource_id
            WHERE w.tenant_id = $1 AND w.live
        )
        SELECT count(*) FROM guarded a JOIN guarded b
          ON a.unit_id = b.unit_id AND a.hold_id < b.hold_id
        WHERE a.span && b.span OR a.stored && b.stored
        """,
        tenant,
    )
    return count


async def written_rows(db: asyncpg.Pool, tenant: str) -> dict[str, int]:
    """How many holds, windows, audit rows and outbox rows the tenant has:
    proof that a refused request wrote nothing."""
    counts = {}
    for table in ("holds", "unit_windows", "audit_log", "outbox", "idempotency_records"):
        counts[table] = await db.fetchval(
            f"SELECT count(*) FROM {table} WHERE tenant_id = $1", tenant
        )
    return counts
