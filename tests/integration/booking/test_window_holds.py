"""Holds on windowed resources over real gRPC: the best free unit that fits,
the window's price, and every change of the hold (release, expiry, confirm,
cancel, refund, a late payment) keeping the units' windows right in Postgres."""

from __future__ import annotations

import json
from datetime import timedelta

import asyncpg
import grpc

from holdfast.contracts.booking.v1 import booking_pb2
from holdfast.platform.proto_time import time_range
from tests.support.availability import eventually
from tests.support.booking import BookingClient, error_of
from tests.support.db import audit_actions
from tests.support.window_holds import (
    EVENING,
    TURNOVER,
    TWO_HOURS,
    live_windows,
    window_hold,
    window_request,
    windowed_resource,
)

HELD = booking_pb2.HOLD_STATUS_HELD
CONFIRMED = booking_pb2.HOLD_STATUS_CONFIRMED


async def outbox_changes(db: asyncpg.Pool, tenant: str, hold_id: str) -> list[str]:
    rows = await db.fetch(
        """
        SELECT payload FROM outbox
        WHERE tenant_id = $1 AND topic = 'availability' AND payload->>'hold_id' = $2
        ORDER BY id
        """,
        tenant,
        hold_id,
    )
    payloads = [json.loads(row["payload"]) for row in rows]
    assert all(p["slot_ids"] == [] for p in payloads), payloads
    return [p["change"] for p in payloads]


async def test_a_party_gets_the_smallest_free_table_that_seats_it(
    client: BookingClient, db: asyncpg.Pool
) -> None:
    room = await windowed_resource(db, client.tenant, price_minor=3000)

    first = await window_hold(client, room.resource_id, party_size=3)
    second = await window_hold(client, room.resource_id, party_size=3)
    pair = await window_hold(client, room.resource_id, party_size=2)
    refused = await error_of(
        client.booking.CreateHold(
            window_request(room.resource_id, EVENING, EVENING + TWO_HOURS, party_size=3),
            metadata=client.md,
        )
    )

    assert [first.window.unit_name, second.window.unit_name, pair.window.unit_name] == [
        "T4",
        "T6",
        "T2",
    ]
    assert (refused.code, refused.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "SOLD_OUT")
    assert first.status == HELD
    assert (first.quantity, first.total.amount_minor, first.total.currency_code) == (
        3,
        3000,
        "EUR",
    )
    assert list(first.lines) == []
    assert first.window.unit_id == room.units["T4"]
    assert first.window.time_range == time_range(EVENING, EVENING + TWO_HOURS)
    assert first.window.guarded_range == time_range(EVENING, EVENING + TWO_HOURS + TURNOVER)
    got = await client.booking.GetHold(
        booking_pb2.GetHoldRequest(hold_id=first.hold_id), metadata=client.md
    )
    assert got.hold == first
    assert await live_windows(db, client.tenant) == {
        first.hold_id: "T4",
        second.hold_id: "T6",
        pair.hold_id: "T2",
    }
    assert await audit_actions(db, client.tenant, first.hold_id) == ["hold.created"]
    assert await outbox_changes(db, client.tenant, first.hold_id) == ["hold.created"]


async def test_the_buffer_is_kept_and_touching_windows_fit(
    client: BookingClient, db: asyncpg.Pool
) -> None:
    room = await windowed_resource(db, client.tenant, units={"T4": 4})
    await window_hold(client, room.resource_id, party_size=2)
    nine = EVENING + TWO_HOURS

    too_close = await error_of(
        client.booking.CreateHold(
            window_request(room.resource_id, nine, nine + TWO_HOURS, party_size=2),
            metadata=client.md,
        )
    )
    after_turnover = await window_hold(client, room.resource_id, nine + TURNOVER, party_size=2)
    before = await window_hold(
        client, room.resource_id, EVENING - TWO_HOURS - TURNOVER, EVENING - TURNOVER, party_size=2
    )

    assert too_close.reason == "SOLD_OUT"
    assert after_turnover.window.unit_name == before.window.unit_name == "T4"


async def test_the_price_counts_every_started_period(
    client: BookingClient, db: asyncpg.Pool
) -> None:
    hourly = await windowed_resource(db, client.tenant, price_minor=1500, price_period_minutes=60)

    short = await window_hold(
        client, hourly.resource_id, EVENING, EVENING + timedelta(minutes=90), party_size=2
    )
    whole = await window_hold(
        client, hourly.resource_id, EVENING, EVENING + TWO_HOURS, unit_id=hourly.units["T6"]
    )

    assert short.total.amount_minor == 2 * 1500
    assert whole.total.amount_minor == 2 * 1500
    # Without a party size the named unit is taken whole.
    assert (whole.window.unit_name, whole.quantity) == ("T6", 6)


async def test_a_named_unit_is_held_or_refused_by_name(
    client: BookingClient, db: asyncpg.Pool
) -> None:
    room = await windowed_resource(db, client.tenant)
    mine = await window_hold(client, room.resource_id, party_size=2, unit_id=room.units["T6"])

    taken = await error_of(
        client.booking.CreateHold(
            window_request(
                room.resource_id,
                EVENING + timedelta(hours=1),
                EVENING + timedelta(hours=3),
                party_size=2,
                unit_id=room.units["T6"],
            ),
            metadata=client.md,
        )
    )

    assert (mine.window.unit_name, mine.quantity) == ("T6", 2)
    assert (taken.code, taken.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "SOLD_OUT")
    assert "T6" in taken.message


async def test_release_frees_the_window_for_the_next_party(
    client: BookingClient, db: asyncpg.Pool
) -> None:
    room = await windowed_resource(db, client.tenant, units={"T4": 4})
    first = await window_hold(client, room.resource_id, party_size=4)

    released = await client.release(first.hold_id)
    again = await client.release(first.hold_id)
    second = await window_hold(client, room.resource_id, party_size=4)

    assert released.status == again.status == booking_pb2.HOLD_STATUS_RELEASED
    assert released.window == first.window  # where it was, still said
    assert second.window.unit_name == "T4"
    assert await live_windows(db, client.tenant) == {second.hold_id: "T4"}
    assert await outbox_changes(db, client.tenant, first.hold_id) == [
        "hold.created",
        "hold.released",
    ]


async def test_the_sweeper_expires_a_window_hold_and_frees_its_unit(
    sweeping_client: BookingClient, db: asyncpg.Pool
) -> None:
    client = sweeping_client
    room = await windowed_resource(db, client.tenant, units={"T4": 4})
    lapsing = await window_hold(client, room.resource_id, party_size=2, ttl_seconds=1)

    expired = await wait_for(client, lapsing.hold_id, booking_pb2.HOLD_STATUS_EXPIRED)
    fresh = await window_hold(client, room.resource_id, party_size=2)

    assert expired.window == lapsing.window
    assert fresh.window.unit_name == "T4"
    assert await live_windows(db, client.tenant) == {fresh.hold_id: "T4"}
    assert await audit_actions(db, client.tenant, lapsing.hold_id) == [
        "hold.created",
        "hold.expired",
    ]
    assert await outbox_changes(db, client.tenant, lapsing.hold_id) == [
        "hold.created",
        "hold.expired",
    ]


async def test_a_lapsed_unswept_hold_is_reclaimed_by_the_next_hold(
    client: BookingClient, db: asyncpg.Pool
) -> None:
    # The shared service's sweeper runs hourly: only the reservation can free it.
    room = await windowed_resource(db, client.tenant, units={"T4": 4})
    lapsed = await window_hold(client, room.resource_id, party_size=2)
    await db.execute(
        "UPDATE holds SET expires_at = now() - interval '1 second' WHERE id = $1::uuid",
        lapsed.hold_id,
    )

    fresh = await window_hold(client, room.resource_id, party_size=2)

    assert fresh.window.unit_name == "T4"
    old = await client.booking.GetHold(
        booking_pb2.GetHoldRequest(hold_id=lapsed.hold_id), metadata=client.md
    )
    assert old.hold.status == booking_pb2.HOLD_STATUS_EXPIRED
    assert old.hold.status_reason == "reclaimed by a reservation"
    assert await live_windows(db, client.tenant) == {fresh.hold_id: "T4"}


async def test_a_live_booking_beside_a_lapsed_hold_still_refuses(
    client: BookingClient, db: asyncpg.Pool
) -> None:
    room = await windowed_resource(db, client.tenant, units={"T4": 4})
    lapsed = await window_hold(
        client, room.resource_id, EVENING, EVENING + timedelta(hours=1), party_size=2
    )
    booked = await window_hold(
        client, room.resource_id, EVENING + timedelta(minutes=75), EVENING + TWO_HOURS, party_size=2
    )
    await client.confirm(booked.hold_id)
    await db.execute(
        "UPDATE holds SET expires_at = now() - interval '1 second' WHERE id = $1::uuid",
        lapsed.hold_id,
    )

    refused = await error_of(
        client.booking.CreateHold(
            window_request(room.resource_id, EVENING, EVENING + TWO_HOURS, party_size=2),
            metadata=client.md,
        )
    )

    assert refused.reason == "SOLD_OUT"
    # The lapsed hold was left for the sweeper: reclaiming it sold nothing.
    old = await client.booking.GetHold(
        booking_pb2.GetHoldRequest(hold_id=lapsed.hold_id), metadata=client.md
    )
    assert old.hold.status == HELD


async def test_confirm_cancel_frees_the_window(client: BookingClient, db: asyncpg.Pool) -> None:
    room = await windowed_resource(db, client.tenant, units={"T4": 4})
    hold = await window_hold(client, room.resource_id, party_size=3)

    booking = await client.confirm(hold.hold_id, "pi_window")
    assert (booking.status, booking.window) == (CONFIRMED, hold.window)
    assert await live_windows(db, client.tenant) == {hold.hold_id: "T4"}
    cancelled = await client.cancel(hold.hold_id)
    fresh = await window_hold(client, room.resource_id, party_size=3)

    assert cancelled.status == booking_pb2.HOLD_STATUS_CANCELLED
    assert await live_windows(db, client.tenant) == {fresh.hold_id: "T4"}
    assert await outbox_changes(db, client.tenant, hold.hold_id) == [
        "hold.created",
        "hold.confirmed",
        "hold.cancelled",
    ]


async def test_a_refunded_booking_frees_the_window(client: BookingClient, db: asyncpg.Pool) -> None:
    room = await windowed_resource(db, client.tenant, units={"T4": 4})
    hold = await window_hold(client, room.resource_id, party_size=3)
    await client.confirm(hold.hold_id, "pi_refunded")

    refunded = (
        await client.booking.MarkBookingRefunded(
            booking_pb2.MarkBookingRefundedRequest(
                booking_id=hold.hold_id, payment_ref="pi_refunded", refund_id="re_1"
            ),
            metadata=client.md,
        )
    ).booking

    assert refunded.status == booking_pb2.HOLD_STATUS_REFUNDED
    assert await live_windows(db, client.tenant) == {}


async def test_a_late_payment_retakes_a_free_window_on_the_same_unit(
    client: BookingClient, db: asyncpg.Pool
) -> None:
    room = await windowed_resource(db, client.tenant)
    late = await window_hold(client, room.resource_id, party_size=4)
    await client.release(late.hold_id)
    # The same window went to another table meanwhile; T4 is free again.
    other = await window_hold(client, room.resource_id, party_size=5)

    confirmed = await client.confirm(late.hold_id, "pi_late")

    assert confirmed.status == CONFIRMED
    assert "window retaken" in confirmed.status_reason
    assert confirmed.window == late.window
    assert await live_windows(db, client.tenant) == {late.hold_id: "T4", other.hold_id: "T6"}


async def test_a_late_payment_whose_unit_was_taken_is_told_to_refund(
    client: BookingClient, db: asyncpg.Pool
) -> None:
    room = await windowed_resource(db, client.tenant, units={"T4": 4, "T6": 6})
    late = await window_hold(client, room.resource_id, party_size=4)
    await client.release(late.hold_id)
    taker = await window_hold(client, room.resource_id, party_size=4)

    error = await error_of(
        client.booking.ConfirmHold(
            booking_pb2.ConfirmHoldRequest(hold_id=late.hold_id, payment_ref="pi_late"),
            metadata=client.md,
        )
    )

    # Another free table does not do: the customer paid for T4.
    assert (error.code, error.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "HOLD_EXPIRED_NO_CAPACITY",
    )
    still = await client.booking.GetHold(
        booking_pb2.GetHoldRequest(hold_id=late.hold_id), metadata=client.md
    )
    assert (still.hold.status, still.hold.payment_ref) == (booking_pb2.HOLD_STATUS_RELEASED, "")
    assert await live_windows(db, client.tenant) == {taker.hold_id: "T4"}


async def test_list_bookings_shows_windows(client: BookingClient, db: asyncpg.Pool) -> None:
    room = await windowed_resource(db, client.tenant)
    hold = await window_hold(client, room.resource_id, party_size=2)
    slotted, [slot] = await client.resource_with_slots()
    slot_hold = await client.hold(slotted.resource_id, [slot.slot_id])

    listed = await client.booking.ListBookings(
        booking_pb2.ListBookingsRequest(page_size=10), metadata=client.md
    )

    by_id = {b.hold_id: b for b in listed.bookings}
    assert by_id[hold.hold_id] == hold
    assert by_id[slot_hold.hold_id] == slot_hold
    assert not by_id[slot_hold.hold_id].HasField("window")


async def wait_for(client: BookingClient, hold_id: str, status: int) -> booking_pb2.Hold:
    async def probe() -> booking_pb2.Hold:
        response = await client.booking.GetHold(
            booking_pb2.GetHoldRequest(hold_id=hold_id), metadata=client.md
        )
        hold: booking_pb2.Hold = response.hold
        return hold

    return await eventually(probe, lambda h: h.status == status, within=10.0)
