"""Window holds paid through the fake Stripe: checkout priced from the hold's
total, the webhook confirms it, and a payment that comes after the hold
lapsed retakes its window, or is refunded when the table was taken."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from holdfast.contracts.booking.v1 import booking_pb2
from tests.support.booking import BookingClient
from tests.support.payments import PaymentStack, checkout, payment_stack, settled_row, until_status
from tests.support.window_holds import (
    EVENING,
    TWO_HOURS,
    live_windows,
    window_hold,
    windowed_resource,
)


@pytest.fixture(scope="module")
async def stack(database_url: str, redis: object) -> AsyncIterator[PaymentStack]:
    async with payment_stack(database_url) as running:
        yield running


@pytest.fixture
def shop(stack: PaymentStack, tenant: str) -> BookingClient:
    return BookingClient.on(stack.channel, tenant)


async def test_hold_checkout_pay_confirmed(stack: PaymentStack, shop: BookingClient) -> None:
    room = await windowed_resource(stack.db, shop.tenant, price_minor=1500, price_period_minutes=60)
    hold = await window_hold(shop, room.resource_id, party_size=3)

    session = await checkout(shop, hold.hold_id)
    completed = await stack.fake.pay(session.session_id)
    booking = await until_status(shop, hold.hold_id, booking_pb2.HOLD_STATUS_CONFIRMED)

    assert session.amount == hold.total
    assert hold.total.amount_minor == 2 * 1500
    [create] = [
        r
        for r in stack.fake.requests(method="POST", path="/v1/checkout/sessions")
        if r.idempotency_key == f"checkout:{hold.hold_id}:1"
    ]
    [item] = create.params["line_items"]
    assert int(item["price_data"]["unit_amount"]) * int(item["quantity"]) == 3000
    assert item["price_data"]["product_data"]["name"].startswith("T4: ")
    assert booking.payment_ref == completed["data"]["object"]["payment_intent"]
    assert booking.window == hold.window
    assert await live_windows(stack.db, shop.tenant) == {hold.hold_id: "T4"}


async def test_a_late_payment_retakes_the_free_window(
    stack: PaymentStack, shop: BookingClient
) -> None:
    room = await windowed_resource(stack.db, shop.tenant, units={"T4": 4})
    late = await window_hold(shop, room.resource_id, party_size=2, ttl_seconds=1)
    session = await checkout(shop, late.hold_id)
    completed = await stack.fake.pay(session.session_id, deliver=False)
    await until_status(shop, late.hold_id, booking_pb2.HOLD_STATUS_EXPIRED)
    assert await live_windows(stack.db, shop.tenant) == {}

    await stack.fake.deliver(completed["id"])

    row = await settled_row(stack.db, completed["id"])
    assert (row["status"], row["outcome"]) == ("APPLIED", "confirmed")
    booking = await until_status(shop, late.hold_id, booking_pb2.HOLD_STATUS_CONFIRMED)
    assert "window retaken" in booking.status_reason
    assert await live_windows(stack.db, shop.tenant) == {late.hold_id: "T4"}


async def test_a_late_payment_whose_table_was_taken_is_refunded(
    stack: PaymentStack, shop: BookingClient
) -> None:
    room = await windowed_resource(stack.db, shop.tenant, units={"T4": 4})
    late = await window_hold(shop, room.resource_id, party_size=2, ttl_seconds=1)
    session = await checkout(shop, late.hold_id)
    completed = await stack.fake.pay(session.session_id, deliver=False)
    await until_status(shop, late.hold_id, booking_pb2.HOLD_STATUS_EXPIRED)
    taker = await window_hold(shop, room.resource_id, EVENING, EVENING + TWO_HOURS, party_size=2)

    await stack.fake.deliver(completed["id"], copies=2)

    row = await settled_row(stack.db, completed["id"])
    payment = completed["data"]["object"]["payment_intent"]
    assert row["status"] == "APPLIED"
    assert row["outcome"].startswith("refunded re_")
    assert len(stack.refund_requests(payment)) == 1
    hold = await until_status(shop, late.hold_id, booking_pb2.HOLD_STATUS_EXPIRED)
    assert hold.payment_ref == ""
    assert await live_windows(stack.db, shop.tenant) == {taker.hold_id: "T4"}
