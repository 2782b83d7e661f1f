"""A hold through its whole life, over real gRPC, checked against Postgres."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import grpc
import pytest

from holdfast.contracts.booking.v1 import booking_pb2
from tests.support.booking import BookingClient, error_of
from tests.support.db import audit_actions, slot_row
from tests.support.services import own_booking_app

HELD = booking_pb2.HOLD_STATUS_HELD
CONFIRMED = booking_pb2.HOLD_STATUS_CONFIRMED


async def test_create_and_get_hold_keeps_the_quoted_price(client: BookingClient) -> None:
    resource, slots = await client.resource_with_slots(count=3, capacity=4)
    hold = await client.hold(
        resource.resource_id, [s.slot_id for s in reversed(slots)], quantity=2, ttl_seconds=120
    )
    fetched = (
        await client.booking.GetHold(
            booking_pb2.GetHoldRequest(hold_id=hold.hold_id), metadata=client.md
        )
    ).hold
    assert fetched == hold
    assert [line.slot_id for line in hold.lines] == [s.slot_id for s in slots]  # by start time
    assert hold.total.amount_minor == 2 * 3 * 2500
    assert hold.total.currency_code == "EUR"
    ttl = hold.expire_time.ToDatetime() - hold.create_time.ToDatetime()
    assert ttl.total_seconds() == pytest.approx(120)


async def test_release_returns_capacity_and_is_repeatable(
    client: BookingClient, db: asyncpg.Pool
) -> None:
    resource, (slot,) = await client.resource_with_slots(capacity=3)
    hold = await client.hold(resource.resource_id, [slot.slot_id], quantity=3)
    assert (await slot_row(db, slot.slot_id))["held"] == 3

    request = booking_pb2.ReleaseHoldRequest(hold_id=hold.hold_id, reason="changed mind")
    released = (await client.booking.ReleaseHold(request, metadata=client.md)).hold
    again = (await client.booking.ReleaseHold(request, metadata=client.md)).hold

    assert released.status == again.status == booking_pb2.HOLD_STATUS_RELEASED
    assert released.status_reason == "changed mind"
    assert (await slot_row(db, slot.slot_id))["held"] == 0
    assert await audit_actions(db, client.tenant, hold.hold_id) == [
        "hold.created",
        "hold.released",
    ]


async def test_confirm_moves_held_to_booked_exactly_once(
    client: BookingClient, db: asyncpg.Pool
) -> None:
    resource, (slot,) = await client.resource_with_slots(capacity=5)
    hold = await client.hold(resource.resource_id, [slot.slot_id], quantity=2)
    confirm = booking_pb2.ConfirmHoldRequest(hold_id=hold.hold_id, payment_ref="pi_1")

    first = (await client.booking.ConfirmHold(confirm, metadata=client.md)).hold
    second = (await client.booking.ConfirmHold(confirm, metadata=client.md)).hold
    other = await error_of(
        client.booking.ConfirmHold(
            booking_pb2.ConfirmHoldRequest(hold_id=hold.hold_id, payment_ref="pi_2"),
            metadata=client.md,
        )
    )

    assert first.status == CONFIRMED
    assert first.payment_ref == "pi_1"
    assert second == first
    assert (other.code, other.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "ALREADY_CONFIRMED")
    row = await slot_row(db, slot.slot_id)
    assert (row["held"], row["booked"]) == (0, 2)
    assert await audit_actions(db, client.tenant, hold.hold_id) == [
        "hold.created",
        "hold.confirmed",
    ]


async def test_cancel_returns_booked_capacity(client: BookingClient, db: asyncpg.Pool) -> None:
    resource, (slot,) = await client.resource_with_slots(capacity=2)
    hold = await client.hold(resource.resource_id, [slot.slot_id], quantity=2)

    not_yet = await error_of(
        client.booking.CancelBooking(
            booking_pb2.CancelBookingRequest(booking_id=hold.hold_id), metadata=client.md
        )
    )
    assert (not_yet.code, not_yet.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "BOOKING_NOT_CANCELLABLE",
    )

    await client.booking.ConfirmHold(
        booking_pb2.ConfirmHoldRequest(hold_id=hold.hold_id, payment_ref="pi_c"), metadata=client.md
    )
    cancelled = (
        await client.booking.CancelBooking(
            booking_pb2.CancelBookingRequest(booking_id=hold.hold_id, reason="guest ill"),
            metadata=client.md,
        )
    ).booking
    assert cancelled.status == booking_pb2.HOLD_STATUS_CANCELLED
    row = await slot_row(db, slot.slot_id)
    assert (row["held"], row["booked"]) == (0, 0)
    booking = (
        await client.booking.GetBooking(
            booking_pb2.GetBookingRequest(booking_id=hold.hold_id), metadata=client.md
        )
    ).booking
    assert booking == cancelled
    assert await audit_actions(db, client.tenant, hold.hold_id) == [
        "hold.created",
        "hold.confirmed",
        "hold.cancelled",
    ]


async def wait_for_status(
    client: BookingClient, hold_id: str, status: int, deadline: float = 10.0
) -> booking_pb2.Hold:
    """Polls until the hold reaches `status`; fails after `deadline` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while True:
        response = await client.booking.GetHold(
            booking_pb2.GetHoldRequest(hold_id=hold_id), metadata=client.md
        )
        hold: booking_pb2.Hold = response.hold
        if hold.status == status or loop.time() > end:
            return hold
        await asyncio.sleep(0.05)


async def test_sweeper_expires_lapsed_holds(
    sweeping_client: BookingClient, db: asyncpg.Pool
) -> None:
    client = sweeping_client
    resource, (slot,) = await client.resource_with_slots(capacity=2)
    hold = await client.hold(resource.resource_id, [slot.slot_id], quantity=2, ttl_seconds=1)

    expired = await wait_for_status(client, hold.hold_id, booking_pb2.HOLD_STATUS_EXPIRED)

    assert expired.status == booking_pb2.HOLD_STATUS_EXPIRED
    assert (await slot_row(db, slot.slot_id))["held"] == 0
    assert await audit_actions(db, client.tenant, hold.hold_id) == ["hold.created", "hold.expired"]


async def test_late_payment_retakes_free_capacity(
    sweeping_client: BookingClient, db: asyncpg.Pool
) -> None:
    client = sweeping_client
    resource, (slot,) = await client.resource_with_slots(capacity=2)
    hold = await client.hold(resource.resource_id, [slot.slot_id], quantity=2, ttl_seconds=1)
    await wait_for_status(client, hold.hold_id, booking_pb2.HOLD_STATUS_EXPIRED)

    confirmed = (
        await client.booking.ConfirmHold(
            booking_pb2.ConfirmHoldRequest(hold_id=hold.hold_id, payment_ref="pi_late"),
            metadata=client.md,
        )
    ).hold

    assert confirmed.status == CONFIRMED
    assert "capacity retaken" in confirmed.status_reason
    row = await slot_row(db, slot.slot_id)
    assert (row["held"], row["booked"]) == (0, 2)


async def test_late_payment_without_capacity_asks_for_a_refund(
    sweeping_client: BookingClient, db: asyncpg.Pool
) -> None:
    client = sweeping_client
    resource, (slot,) = await client.resource_with_slots(capacity=2)
    late = await client.hold(resource.resource_id, [slot.slot_id], quantity=2, ttl_seconds=1)
    await wait_for_status(client, late.hold_id, booking_pb2.HOLD_STATUS_EXPIRED)
    await client.hold(resource.resource_id, [slot.slot_id], quantity=1)

    error = await error_of(
        client.booking.ConfirmHold(
            booking_pb2.ConfirmHoldRequest(hold_id=late.hold_id, payment_ref="pi_late"),
            metadata=client.md,
        )
    )

    assert (error.code, error.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "HOLD_EXPIRED_NO_CAPACITY",
    )
    row = await slot_row(db, slot.slot_id)
    assert (row["held"], row["booked"]) == (1, 0)


@pytest.fixture
async def client_without_sweeper(
    migrated_database: str, tenant: str
) -> AsyncIterator[BookingClient]:
    async with own_booking_app(migrated_database, tenant) as client:
        # The sweeper's first pass runs at start; let it pass so it cannot race.
        await asyncio.sleep(0.1)
        yield client


async def test_reservation_reclaims_lapsed_holds_itself(
    client_without_sweeper: BookingClient, db: asyncpg.Pool
) -> None:
    client = client_without_sweeper
    resource, (slot,) = await client.resource_with_slots(capacity=1)
    lapsed = await client.hold(resource.resource_id, [slot.slot_id], ttl_seconds=1)
    await db.execute(
        "UPDATE holds SET expires_at = now() - interval '1 second' WHERE id = $1::uuid",
        lapsed.hold_id,
    )

    fresh = await client.hold(resource.resource_id, [slot.slot_id])

    assert fresh.status == HELD
    old = (
        await client.booking.GetHold(
            booking_pb2.GetHoldRequest(hold_id=lapsed.hold_id), metadata=client.md
        )
    ).hold
    assert old.status == booking_pb2.HOLD_STATUS_EXPIRED
    assert old.status_reason == "reclaimed by a reservation"
    assert (await slot_row(db, slot.slot_id))["held"] == 1


async def test_list_bookings_pages_newest_first_with_filters(client: BookingClient) -> None:
    resource, slots = await client.resource_with_slots(count=7, capacity=3)
    other, other_slots = await client.resource_with_slots(count=1, capacity=3)
    created = [await client.hold(resource.resource_id, [s.slot_id]) for s in slots]
    await client.hold(other.resource_id, [other_slots[0].slot_id])
    for hold in created[:2]:
        await client.booking.ConfirmHold(
            booking_pb2.ConfirmHoldRequest(hold_id=hold.hold_id, payment_ref="pi"),
            metadata=client.md,
        )

    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await client.booking.ListBookings(
            booking_pb2.ListBookingsRequest(
                page_size=3, page_token=token, resource_id=resource.resource_id
            ),
            metadata=client.md,
        )
        seen += [b.hold_id for b in page.bookings]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert seen == [h.hold_id for h in reversed(created)]
    assert pages == 3

    confirmed = await client.booking.ListBookings(
        booking_pb2.ListBookingsRequest(statuses=[CONFIRMED]), metadata=client.md
    )
    assert {b.hold_id for b in confirmed.bookings} == {h.hold_id for h in created[:2]}

    first = await client.booking.ListBookings(
        booking_pb2.ListBookingsRequest(page_size=2), metadata=client.md
    )
    mismatch = await error_of(
        client.booking.ListBookings(
            booking_pb2.ListBookingsRequest(
                page_size=2, page_token=first.next_page_token, statuses=[HELD]
            ),
            metadata=client.md,
        )
    )
    assert mismatch.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in mismatch.field_violations] == ["page_token"]
