"""The demo tenant `holdfast up` shows, seeded through the public API like any client would."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from typing import Any
from zoneinfo import ZoneInfo

from google.protobuf.timestamp_pb2 import Timestamp

from holdfast.booking.v1 import inventory_pb2, inventory_pb2_grpc
from holdfast.common.v1 import money_pb2, time_range_pb2

DEMO_TENANT = "demo"
DEMO_METADATA = (("x-tenant-id", DEMO_TENANT),)
DEMO_ZONE = "Europe/Lisbon"
RPC_TIMEOUT = 10.0


def seed_demo(channel: Any) -> bool:
    """Creates the demo inventory unless the tenant has some; says whether it did."""
    inventory = inventory_pb2_grpc.InventoryServiceStub(channel)
    existing = inventory.ListResources(
        inventory_pb2.ListResourcesRequest(page_size=1), metadata=DEMO_METADATA, timeout=RPC_TIMEOUT
    )
    if existing.resources:
        return False
    zone = ZoneInfo(DEMO_ZONE)
    # Tomorrow onwards, so every slot is still bookable whatever the time now.
    first_day = datetime.now(zone).date() + timedelta(days=1)
    tour_days = daily_ranges(zone, first_day, 7, clock(9), timedelta(hours=2))
    tour_days += daily_ranges(zone, first_day, 7, clock(14), timedelta(hours=2))
    # Check-in 15:00, check-out 11:00 the next day (wall clock, so DST nights still end at 11:00).
    nights = daily_ranges(zone, first_day, 14, clock(15), timedelta(hours=20))
    _create_with_slots(inventory, "Harbour kayak tour", 4500, 8, sorted(tour_days))
    _create_with_slots(inventory, "Sea view room", 12000, 3, nights)
    return True


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
    """A resource id and one of its slot ids to put in the walkthrough."""
    inventory = inventory_pb2_grpc.InventoryServiceStub(channel)
    resources = inventory.ListResources(
        inventory_pb2.ListResourcesRequest(), metadata=DEMO_METADATA, timeout=RPC_TIMEOUT
    ).resources
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
