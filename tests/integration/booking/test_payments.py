"""Payments end to end: checkout at (the fake) Stripe, signed webhooks, the
processor, the booking service, refunds and the reconciler.

The module runs its own stack on a database of its own: a fake Stripe, a
booking service paying through it, a webhook service it delivers to, and an
availability service. Only Stripe is faked, at its HTTP boundary.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import grpc
import pytest

from holdfast.contracts.booking.v1 import booking_pb2
from tests.support.availability import AvailabilityClient, eventually
from tests.support.booking import BookingClient, error_of
from tests.support.db import audit_actions
from tests.support.metrics import sample
from tests.support.payments import (
    PaymentStack,
    checkout,
    held_checkout,
    hold_status,
    inbox_row,
    payment_stack,
    settled_row,
    until_status,
)
from tests.support.services import running_booking
from tests.support.stripe import stripe_client
from tests.support.stripe_events import event


@pytest.fixture(scope="module")
async def stack(database_url: str, redis: object) -> AsyncIterator[PaymentStack]:
    async with payment_stack(database_url, with_gateway=True) as running:
        yield running


@pytest.fixture
def shop(stack: PaymentStack, tenant: str) -> BookingClient:
    return BookingClient.on(stack.channel, tenant)


async def test_hold_checkout_pay_confirm_and_availability_shows_it(
    stack: PaymentStack, shop: BookingClient, tenant: str
) -> None:
    resource, [slot] = await shop.resource_with_slots(capacity=4)
    hold = await shop.hold(resource.resource_id, [slot.slot_id], quantity=2)

    started = await checkout(shop, hold.hold_id)
    again = await checkout(shop, hold.hold_id)

    assert started.status == booking_pb2.CHECKOUT_STATUS_OPEN
    assert started.attempt == 1
    assert started.url.startswith(stack.fake.base_url)
    assert again == started  # the open session again, not a second one
    assert started.amount == hold.total
    creates = stack.fake.requests(method="POST", path="/v1/checkout/sessions")
    mine = [r for r in creates if r.idempotency_key == f"checkout:{hold.hold_id}:1"]
    assert len(mine) == 1
    assert mine[0].params["client_reference_id"] == hold.hold_id
    assert mine[0].params["metadata"]["tenant_id"] == tenant

    completed = await stack.fake.pay(started.session_id)

    booking = await until_status(shop, hold.hold_id, booking_pb2.HOLD_STATUS_CONFIRMED)
    assert booking.payment_ref == completed["data"]["object"]["payment_intent"]
    row = await settled_row(stack.db, completed["id"])
    assert (row["status"], row["outcome"]) == ("APPLIED", "confirmed")
    availability = AvailabilityClient.on(stack.availability_channel, tenant)
    counts = await eventually(
        lambda: availability.slot_counts(resource.resource_id),
        lambda c: c[slot.slot_id].booked == 2,
    )
    assert counts[slot.slot_id].available == 2


async def test_a_late_payment_without_capacity_is_refunded_exactly_once(
    stack: PaymentStack, shop: BookingClient, tenant: str
) -> None:
    resource, [slot] = await shop.resource_with_slots(capacity=1)
    late = await shop.hold(resource.resource_id, [slot.slot_id], ttl_seconds=1)
    session = await checkout(shop, late.hold_id)
    # The customer pays, but the webhook is slow: the hold lapses first and
    # someone else takes the only place.
    completed = await stack.fake.pay(session.session_id, deliver=False)
    await until_status(shop, late.hold_id, booking_pb2.HOLD_STATUS_EXPIRED)
    await shop.hold(resource.resource_id, [slot.slot_id])

    await stack.fake.deliver(completed["id"], copies=3)

    row = await settled_row(stack.db, completed["id"])
    payment = completed["data"]["object"]["payment_intent"]
    assert row["status"] == "APPLIED"
    assert row["outcome"].startswith("refunded re_")
    refunds = [
        r
        for r in stack.fake.requests(method="POST", path="/v1/refunds")
        if r.params.get("payment_intent") == payment
    ]
    assert [r.idempotency_key for r in refunds if not r.replayed] == [f"refund:{payment}"]
    hold = await hold_status(shop, late.hold_id)
    assert hold.status == booking_pb2.HOLD_STATUS_EXPIRED
    assert (await audit_actions(stack.db, tenant, late.hold_id)).count("hold.payment_refunded") == 1
    stored = await stack.db.fetchrow("SELECT * FROM refunds WHERE payment_ref = $1", payment)
    assert stored["hold_id"] == uuid.UUID(late.hold_id)
    assert sample(stack.webhooks, "holdfast_webhook_refunds_total") >= 1


async def test_expired_after_completed_leaves_the_booking_confirmed(
    stack: PaymentStack, shop: BookingClient, tenant: str
) -> None:
    held = await held_checkout(shop, capacity=2)
    completed = await stack.fake.pay(held.session.session_id)
    await until_status(shop, held.hold.hold_id, booking_pb2.HOLD_STATUS_CONFIRMED)

    # An `expired` for the same session arriving late (out of order).
    stale = dict(completed["data"]["object"], status="expired")
    expired = event("checkout.session.expired", stale, created=completed["created"] - 1)
    await stack.post_event(expired)

    row = await settled_row(stack.db, expired["id"])
    assert row["status"] == "IGNORED"
    assert (await hold_status(shop, held.hold.hold_id)).status == booking_pb2.HOLD_STATUS_CONFIRMED


async def test_completed_after_release_for_expiry_follows_the_late_payment_rule(
    stack: PaymentStack, shop: BookingClient, tenant: str
) -> None:
    held = await held_checkout(shop, capacity=2)
    completed = await stack.fake.pay(held.session.session_id, deliver=False)
    expired = event(
        "checkout.session.expired",
        dict(completed["data"]["object"], status="expired"),
        created=completed["created"] - 1,
    )
    await stack.post_event(expired)
    await until_status(shop, held.hold.hold_id, booking_pb2.HOLD_STATUS_RELEASED)

    await stack.fake.deliver(completed["id"])

    booking = await until_status(shop, held.hold.hold_id, booking_pb2.HOLD_STATUS_CONFIRMED)
    assert "capacity retaken" in booking.status_reason
    slot_now = await shop.slot(held.resource_id, held.slot_id)
    assert (slot_now.held, slot_now.booked) == (0, 1)


async def test_a_lapsed_hold_expires_its_session_at_stripe(
    stack: PaymentStack, shop: BookingClient
) -> None:
    held = await held_checkout(shop, capacity=2, ttl_seconds=1)
    assert held.session.expire_time.ToSeconds() - held.hold.expire_time.ToSeconds() > 25 * 60

    await until_status(shop, held.hold.hold_id, booking_pb2.HOLD_STATUS_EXPIRED)

    async with stripe_client(stack.fake) as client:
        at_stripe = await eventually(
            lambda: client.v1.checkout.sessions.retrieve_async(held.session.session_id),
            lambda s: s.status == "expired",
        )
    assert at_stripe.status == "expired"
    recorded = await eventually(
        lambda: stack.db.fetchval(
            "SELECT status FROM checkouts WHERE session_id = $1", held.session.session_id
        ),
        lambda status: status == "EXPIRED",
    )
    assert recorded == "EXPIRED"


async def test_after_an_expired_session_a_new_attempt_starts(
    stack: PaymentStack, shop: BookingClient
) -> None:
    resource, [slot] = await shop.resource_with_slots(capacity=2)
    hold = await shop.hold(resource.resource_id, [slot.slot_id], ttl_seconds=3600)
    first = await checkout(shop, hold.hold_id)
    # The session expires at Stripe before its webhook arrives.
    await stack.fake.expire_session(first.session_id, deliver=False)

    second = await checkout(shop, hold.hold_id)

    assert second.attempt == 2
    assert second.session_id != first.session_id
    keys = {r.idempotency_key for r in stack.fake.requests(path="/v1/checkout/sessions")}
    assert {f"checkout:{hold.hold_id}:1", f"checkout:{hold.hold_id}:2"} <= keys
    status = await stack.db.fetchval(
        "SELECT status FROM checkouts WHERE session_id = $1", first.session_id
    )
    assert status == "EXPIRED"


async def test_a_session_stripe_does_not_know_is_replaced(
    stack: PaymentStack, shop: BookingClient
) -> None:
    resource, [slot] = await shop.resource_with_slots(capacity=2)
    hold = await shop.hold(resource.resource_id, [slot.slot_id], ttl_seconds=3600)
    first = await checkout(shop, hold.hold_id)
    # As after switching Stripe accounts (or restarting a local fake Stripe).
    await stack.db.execute(
        "UPDATE checkouts SET session_id = 'cs_test_unknown_to_stripe' WHERE session_id = $1",
        first.session_id,
    )

    second = await checkout(shop, hold.hold_id)

    assert second.attempt == 2
    assert second.status == booking_pb2.CHECKOUT_STATUS_OPEN


async def test_a_full_refund_at_stripe_marks_the_booking_refunded(
    stack: PaymentStack, shop: BookingClient
) -> None:
    held = await held_checkout(shop, capacity=2)
    completed = await stack.fake.pay(held.session.session_id)
    await until_status(shop, held.hold.hold_id, booking_pb2.HOLD_STATUS_CONFIRMED)

    async with stripe_client(stack.fake) as client:  # an operator, in Stripe's dashboard
        await client.v1.refunds.create_async(
            {"payment_intent": completed["data"]["object"]["payment_intent"]}
        )

    refunded = await until_status(shop, held.hold.hold_id, booking_pb2.HOLD_STATUS_REFUNDED)
    assert refunded.status_reason == "payment refunded at Stripe"
    slot_now = await shop.slot(held.resource_id, held.slot_id)
    assert (slot_now.held, slot_now.booked) == (0, 0)


async def test_the_reconciler_confirms_a_paid_hold_whose_webhook_never_came(
    stack: PaymentStack, shop: BookingClient
) -> None:
    held = await held_checkout(shop, capacity=2, ttl_seconds=30)
    completed = await stack.fake.pay(held.session.session_id, deliver=False)

    # A second booking replica, whose reconciler runs often.
    async with running_booking(
        stack.database_url, reconciler_interval_seconds=0.2, **stack.stripe_settings()
    ):
        booking = await until_status(shop, held.hold.hold_id, booking_pb2.HOLD_STATUS_CONFIRMED)

    assert booking.payment_ref == completed["data"]["object"]["payment_intent"]
    assert stack.fake.deliveries(completed["id"]) == []
    assert await inbox_row(stack.db, completed["id"]) is None


async def test_checkout_refuses_what_cannot_be_paid(
    stack: PaymentStack, shop: BookingClient, client: BookingClient
) -> None:
    resource, [slot] = await shop.resource_with_slots(capacity=2)
    hold = await shop.hold(resource.resource_id, [slot.slot_id])
    await shop.release(hold.hold_id)

    released = await error_of(checkout(shop, hold.hold_id))
    unknown = await error_of(checkout(shop, "00000000-0000-4000-8000-000000000000"))
    malformed = await error_of(checkout(shop, "nope"))
    # The run's shared booking service has no Stripe key: payments are off.
    other, [other_slot] = await client.resource_with_slots(capacity=1)
    unpaid = await client.hold(other.resource_id, [other_slot.slot_id])
    disabled = await error_of(checkout(client, unpaid.hold_id))

    assert (released.code, released.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "HOLD_NOT_PAYABLE",
    )
    assert unknown.code == grpc.StatusCode.NOT_FOUND
    assert malformed.code == grpc.StatusCode.INVALID_ARGUMENT
    assert disabled.reason == "PAYMENTS_DISABLED"


async def test_an_async_payment_confirms_on_success_and_releases_on_failure(
    stack: PaymentStack, shop: BookingClient
) -> None:
    resource, [slot] = await shop.resource_with_slots(capacity=2)
    paid = await shop.hold(resource.resource_id, [slot.slot_id])
    declined = await shop.hold(resource.resource_id, [slot.slot_id])
    paid_session = await checkout(shop, paid.hold_id)
    declined_session = await checkout(shop, declined.hold_id)

    pending = await stack.fake.pay(paid_session.session_id, async_payment=True)
    row = await settled_row(stack.db, pending["id"])
    assert (row["status"], row["outcome"]) == ("IGNORED", "awaiting an asynchronous payment")
    assert (await hold_status(shop, paid.hold_id)).status == booking_pb2.HOLD_STATUS_HELD

    await stack.fake.finish_async_payment(paid_session.session_id, succeeded=True)
    await stack.fake.pay(declined_session.session_id, async_payment=True)
    await stack.fake.finish_async_payment(declined_session.session_id, succeeded=False)

    await until_status(shop, paid.hold_id, booking_pb2.HOLD_STATUS_CONFIRMED)
    gone = await until_status(shop, declined.hold_id, booking_pb2.HOLD_STATUS_RELEASED)
    assert gone.status_reason == "checkout async_payment_failed"
    slot_now = await shop.slot(resource.resource_id, slot.slot_id)
    assert (slot_now.held, slot_now.booked) == (0, 1)
