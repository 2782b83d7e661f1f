"""The demo's guesthouse and bike rental booked end to end, as the README
shows them: seeded through the InventoryService, held for a window, priced
per started day or hour, paid through the fake Stripe, confirmed, and seen
taken in window availability (turnover included)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import grpc
import pytest

from devtools.demo import DEMO_TENANT, seed_demo
from devtools.demo_windowed import BIKES, HOTEL
from holdfast.contracts.booking.v1 import booking_pb2, inventory_pb2
from holdfast.platform.proto_time import time_range
from tests.support.availability import AvailabilityClient
from tests.support.booking import BookingClient
from tests.support.payments import PaymentStack, checkout, payment_stack, until_status
from tests.support.windows import window_availability

# A Wednesday in March, before Lisbon moves to summer time (+00:00 all along).
ARRIVAL = date(2031, 3, 12)


def _seed(port: int) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        seed_demo(channel)


@pytest.fixture(scope="module")
async def stack(database_url: str, redis: object) -> AsyncIterator[PaymentStack]:
    async with payment_stack(database_url, with_availability=True) as running:
        await asyncio.to_thread(_seed, running.booking.port)
        yield running


@pytest.fixture
def demo(stack: PaymentStack) -> BookingClient:
    return BookingClient.on(stack.channel, DEMO_TENANT)


async def _resource_id(demo: BookingClient, name: str) -> str:
    listed = await demo.inventory.ListResources(
        inventory_pb2.ListResourcesRequest(page_size=500), metadata=demo.md
    )
    [found] = [str(r.resource_id) for r in listed.resources if r.name == name]
    return found


async def _book_and_pay(
    stack: PaymentStack,
    demo: BookingClient,
    name: str,
    window: tuple[datetime, datetime],
    party: int,
) -> booking_pb2.Hold:
    """Holds the window for the party on the demo resource `name`, pays its
    checkout at the fake Stripe and waits for the webhook's confirmation."""
    request = booking_pb2.CreateHoldRequest(
        resource_id=await _resource_id(demo, name), window=time_range(*window), party_size=party
    )
    hold: booking_pb2.Hold = (await demo.booking.CreateHold(request, metadata=demo.md)).hold
    session = await checkout(demo, hold.hold_id)
    assert session.amount == hold.total
    await stack.fake.pay(session.session_id)
    return await until_status(demo, hold.hold_id, booking_pb2.HOLD_STATUS_CONFIRMED)


def _free(answer: object, unit_name: str) -> list[tuple[str, str]]:
    [unit] = [u for u in answer.units if u.name == unit_name]  # type: ignore[attr-defined]
    return [
        (
            f.start_time.ToDatetime().strftime("%d %H:%M"),
            f.end_time.ToDatetime().strftime("%d %H:%M"),
        )
        for f in unit.free
    ]


async def test_two_nights_in_the_guesthouse_cost_two_nights_and_keep_housekeeping_clear(
    stack: PaymentStack, demo: BookingClient
) -> None:
    check_in = datetime(2031, 3, 12, 15, tzinfo=UTC)
    check_out = datetime(2031, 3, 14, 11, tzinfo=UTC)  # 44 h: two started days

    booking = await _book_and_pay(stack, demo, HOTEL.name, (check_in, check_out), party=2)

    assert booking.window.unit_name == "Room 1"  # the smallest that sleeps 2, then by name
    assert (booking.total.amount_minor, booking.total.currency_code) == (2 * 9500, "EUR")
    assert stack.availability_channel is not None
    availability = AvailabilityClient.on(stack.availability_channel, DEMO_TENANT)
    answer = await window_availability(
        availability, await _resource_id(demo, HOTEL.name), ARRIVAL, date(2031, 3, 14), 2
    )
    # Taken from check-in until 15:00 on the 14th: the stay, then 4 h of housekeeping.
    assert _free(answer, "Room 1") == [("12 00:00", "12 15:00"), ("14 15:00", "15 00:00")]
    assert _free(answer, "Room 2") == [("12 00:00", "15 00:00")]


async def test_a_bike_for_three_and_a_half_hours_costs_four_started_hours(
    stack: PaymentStack, demo: BookingClient
) -> None:
    start = datetime(2031, 3, 12, 10, tzinfo=UTC)
    end = datetime(2031, 3, 12, 13, 30, tzinfo=UTC)

    first = await _book_and_pay(stack, demo, BIKES.name, (start, end), party=1)
    second = await _book_and_pay(stack, demo, BIKES.name, (start, end), party=1)

    assert (first.window.unit_name, second.window.unit_name) == ("Bike 1", "Bike 2")
    assert first.total.amount_minor == second.total.amount_minor == 4 * 800
    assert stack.availability_channel is not None
    availability = AvailabilityClient.on(stack.availability_channel, DEMO_TENANT)
    answer = await window_availability(
        availability, await _resource_id(demo, BIKES.name), ARRIVAL, ARRIVAL, 1
    )
    assert _free(answer, "Bike 1") == [("12 09:00", "12 10:00"), ("12 13:30", "12 19:00")]
    assert _free(answer, "Bike 3") == [("12 09:00", "12 19:00")]
    # 10:00 still starts a ride, on the first bike free then.
    [ten] = [s for s in answer.starts if s.start_time.ToDatetime() == start.replace(tzinfo=None)]
    assert ten.unit_id == next(u.unit_id for u in answer.units if u.name == "Bike 3")
