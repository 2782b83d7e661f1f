"""The demo tenant `python -m devtools up` shows, seeded through the public API like any
client would, and its API key for the gateway."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from google.protobuf.timestamp_pb2 import Timestamp

from devtools.demo_windowed import WINDOWED_DEMOS, ensure_windowed
from holdfast.contracts.booking.v1 import inventory_pb2, inventory_pb2_grpc
from holdfast.contracts.common.v1 import money_pb2, time_range_pb2
from holdfast.tenancy import SCOPES
from holdfast.tenancy.keys import KeyRepository

DEMO_TENANT = "demo"
DEMO_METADATA = (("x-tenant-id", DEMO_TENANT),)
DEMO_ZONE = "Europe/Lisbon"
DEMO_TENANT_NAME = "Demo"
# In the state dir: the demo tenant's API key, kept across `make up` runs.
DEMO_KEY_FILE = "demo-api-key"
DEMO_KEY_NAME = "holdfast up demo key"
RPC_TIMEOUT = 10.0
SQL_TIMEOUT = 10.0
KAYAK_TOUR = "Harbour kayak tour"
SEA_VIEW_ROOM = "Sea view room"
SLOTTED_DEMOS = (KAYAK_TOUR, SEA_VIEW_ROOM)


@dataclass(frozen=True)
class DemoKey:
    token: str
    # False: the one from an earlier run, still good.
    created: bool


def ensure_demo_key(database_url: str, key_file: Path) -> DemoKey:
    """The demo tenant's row in `tenants`, and an API key for it with every scope.

    The key saved in `key_file` is used again while this database accepts it
    (it exists here, is the demo tenant's, is neither revoked nor expired and
    has every scope), so a key copied from one run keeps working in the next;
    otherwise a new one is made and saved there, readable by the owner only.
    """
    saved = key_file.read_text().strip() if key_file.exists() else ""
    made = asyncio.run(_keep_or_make_key(database_url, saved))
    if made is None:
        return DemoKey(saved, created=False)
    write_private(key_file, made + "\n")
    return DemoKey(made, created=True)


async def _keep_or_make_key(database_url: str, saved: str) -> str | None:
    """None if `saved` is a good demo key in this database, else a new key."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1, timeout=SQL_TIMEOUT)
    assert pool is not None
    try:
        keys = KeyRepository(pool)
        await keys.create_tenant(DEMO_TENANT, DEMO_TENANT_NAME)
        if saved:
            key = await keys.find(saved)
            if (
                key is not None
                and key.tenant_id == DEMO_TENANT
                and key.usable_at(datetime.now(UTC))
                and set(SCOPES) <= set(key.scopes)
            ):
                return None
        made = await keys.create_key(DEMO_TENANT, SCOPES, name=DEMO_KEY_NAME)
        return made.token
    finally:
        await pool.close()


def write_private(path: Path, text: str) -> None:
    """Writes `text` to a new file at `path` only its owner can read (it holds a secret)."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as private:
        private.write(text)


def seed_demo(channel: Any) -> bool:
    """Creates what the demo inventory lacks; says whether it created anything.

    The slotted kayak tour and sea-view room are made with their slots only
    when the tenant has no resources of either name (their slots run from
    the day of the first `make up`); the windowed restaurant, hotel and bike
    rental are each made or completed by name (devtools.demo_windowed), so a
    demo tenant seeded before they existed gains them.
    """
    inventory = inventory_pb2_grpc.InventoryServiceStub(channel)
    existing = _resource_ids_by_name(inventory)
    call = {"metadata": DEMO_METADATA, "timeout": RPC_TIMEOUT}
    made = False
    if not existing.keys() & set(SLOTTED_DEMOS):
        _seed_slotted(inventory)
        made = True
    for demo in WINDOWED_DEMOS:
        made |= ensure_windowed(inventory, demo, existing.get(demo.name), DEMO_ZONE, call)
    return made


def _resource_ids_by_name(inventory: Any) -> dict[str, str]:
    ids: dict[str, str] = {}
    token = ""
    while True:
        page = inventory.ListResources(
            inventory_pb2.ListResourcesRequest(page_size=500, page_token=token),
            metadata=DEMO_METADATA,
            timeout=RPC_TIMEOUT,
        )
        ids.update((r.name, r.resource_id) for r in page.resources)
        token = page.next_page_token
        if not token:
            return ids


def _seed_slotted(inventory: Any) -> None:
    zone = ZoneInfo(DEMO_ZONE)
    # Tomorrow onwards, so every slot is still bookable whatever the time now.
    first_day = datetime.now(zone).date() + timedelta(days=1)
    tour_days = daily_ranges(zone, first_day, 7, clock(9), timedelta(hours=2))
    tour_days += daily_ranges(zone, first_day, 7, clock(14), timedelta(hours=2))
    # Check-in 15:00, check-out 11:00 the next day (wall clock, so DST nights still end at 11:00).
    nights = daily_ranges(zone, first_day, 14, clock(15), timedelta(hours=20))
    _create_with_slots(inventory, KAYAK_TOUR, 4500, 8, sorted(tour_days))
    _create_with_slots(inventory, SEA_VIEW_ROOM, 12000, 3, nights)


def daily_ranges(
    zone: ZoneInfo, first_day: date, days: int, start: clock, length: timedelta
) -> list[tuple[datetime, datetime]]:
    """One [start, start + length) per day in local time, as UTC datetimes."""
    ranges = []
    for offset in range(days):
        local_start = datetime.combine(first_day + timedelta(days=offset), start, tzinfo=zone)
        # Adding to an aware datetime is wall-clock arithmetic in its zone.
        local_end = local_start + length
        ranges.append((local_start.astimezone(UTC), local_end.astimezone(UTC)))
    return ranges


def _create_with_slots(
    inventory: Any,
    name: str,
    price_minor: int,
    capacity: int,
    ranges: list[tuple[datetime, datetime]],
) -> None:
    # request_ids make a retried seed (say after a timeout) create nothing twice.
    key = "demo-seed-" + name.lower().replace(" ", "-")
    resource = inventory.CreateResource(
        inventory_pb2.CreateResourceRequest(
            name=name,
            time_zone=DEMO_ZONE,
            price=money_pb2.Money(currency_code="EUR", amount_minor=price_minor),
            default_capacity=capacity,
            request_id=key,
        ),
        metadata=DEMO_METADATA,
        timeout=RPC_TIMEOUT,
    ).resource
    slots = [
        inventory_pb2.SlotSpec(
            time_range=time_range_pb2.TimeRange(start_time=_ts(start), end_time=_ts(end)),
            capacity=capacity,
        )
        for start, end in ranges
    ]
    inventory.CreateSlots(
        inventory_pb2.CreateSlotsRequest(
            resource_id=resource.resource_id, slots=slots, request_id=key + "-slots"
        ),
        metadata=DEMO_METADATA,
        timeout=RPC_TIMEOUT,
    )


def _ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def example_ids(channel: Any) -> tuple[str, str]:
    """A slotted resource's id and one of its slot ids to put in the walkthrough."""
    inventory = inventory_pb2_grpc.InventoryServiceStub(channel)
    resources = [
        r
        for r in inventory.ListResources(
            inventory_pb2.ListResourcesRequest(page_size=500),
            metadata=DEMO_METADATA,
            timeout=RPC_TIMEOUT,
        ).resources
        if r.kind != inventory_pb2.RESOURCE_KIND_WINDOWED
    ]
    if not resources:
        return "RESOURCE_ID", "SLOT_ID"
    resource = min(resources, key=lambda r: r.name)
    slots = inventory.ListSlots(
        inventory_pb2.ListSlotsRequest(resource_id=resource.resource_id),
        metadata=DEMO_METADATA,
        timeout=RPC_TIMEOUT,
    ).slots
    first = min(slots, key=lambda s: s.time_range.start_time.ToDatetime(), default=None)
    return resource.resource_id, first.slot_id if first else "SLOT_ID"
