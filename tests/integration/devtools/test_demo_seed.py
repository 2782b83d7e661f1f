"""The demo tenant `make up` seeds, through the real InventoryService: the
slotted tour and room, and the windowed restaurant, hotel and bike rental
with their units, rules and hours; seeding again makes nothing twice."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import grpc

from devtools.demo import DEMO_METADATA, example_ids, seed_demo
from devtools.demo_windowed import BIKES, HOTEL, RESTAURANT
from holdfast.contracts.booking.v1 import inventory_pb2, inventory_pb2_grpc
from services.booking.server import BookingApp

NAMES = [
    "Alfama guesthouse",
    "City bike rental",
    "Harbour bistro",
    "Harbour kayak tour",
    "Sea view room",
]


def _resources(channel: grpc.Channel) -> dict[str, inventory_pb2.Resource]:
    inventory = inventory_pb2_grpc.InventoryServiceStub(channel)
    listed = inventory.ListResources(
        inventory_pb2.ListResourcesRequest(page_size=500), metadata=DEMO_METADATA, timeout=10
    )
    return {r.name: r for r in listed.resources}


def _setup(channel: grpc.Channel, resource_id: str) -> inventory_pb2.GetWindowSetupResponse:
    inventory = inventory_pb2_grpc.InventoryServiceStub(channel)
    setup: inventory_pb2.GetWindowSetupResponse = inventory.GetWindowSetup(
        inventory_pb2.GetWindowSetupRequest(resource_id=resource_id),
        metadata=DEMO_METADATA,
        timeout=10,
    )
    return setup


def _seed_twice(port: int) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        first = seed_demo(channel)
        resources = _resources(channel)
        assert sorted(resources) == NAMES
        assert seed_demo(channel) is False
        assert _resources(channel) == resources

        bistro = _setup(channel, resources[RESTAURANT.name].resource_id)
        assert bistro.resource.kind == inventory_pb2.RESOURCE_KIND_WINDOWED
        assert [(u.name, u.size) for u in bistro.units] == [
            ("T2a", 2),
            ("T2b", 2),
            ("T4a", 4),
            ("T4b", 4),
            ("T6", 6),
        ]
        rules = bistro.rules
        assert rules.min_duration.ToTimedelta() == rules.max_duration.ToTimedelta()
        assert rules.min_duration.ToTimedelta() == timedelta(hours=2)
        assert rules.buffer_after.ToTimedelta() == timedelta(minutes=15)
        weekly = {w.weekday: [(r.opens, r.closes) for r in w.ranges] for w in bistro.hours.weekly}
        assert inventory_pb2.WEEKDAY_MONDAY not in weekly
        assert weekly[inventory_pb2.WEEKDAY_FRIDAY] == [("12:00", "15:00"), ("18:00", "23:00")]

        hotel = _setup(channel, resources[HOTEL.name].resource_id)
        assert hotel.rules.price_period.ToTimedelta() == timedelta(days=1)
        assert len(hotel.hours.weekly) == 7
        bikes = _setup(channel, resources[BIKES.name].resource_id)
        assert {u.size for u in bikes.units} == {1}
        assert bikes.rules.price_period.ToTimedelta() == timedelta(hours=1)

        # The walkthrough's example is the slotted tour, never a windowed resource.
        resource_id, slot_id = example_ids(channel)
        assert resource_id == resources["Harbour kayak tour"].resource_id
        assert slot_id != "SLOT_ID"
    assert first is True


async def test_the_demo_is_seeded_once_with_its_windowed_resources(
    booking_app: BookingApp,
) -> None:
    # The seed is synchronous gRPC, as `make up` runs it; the service runs on this loop.
    await asyncio.to_thread(_seed_twice, booking_app.port)
