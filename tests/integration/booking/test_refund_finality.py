"""A refund is final for its payment (invariant 9): a payment that was
refunded, or whose refund is in flight, never confirms a hold, whichever path
brings it back (the webhook, the reconciler, a replayed dead event) and in
whichever order `charge.refunded` arrives.

The story of most tests: a customer pays, the payment's webhook is late, the
hold lapses and someone else takes the only place, so the payment is
refunded. Then the place frees again, and the payment comes back by another
path: it must stay refunded, the hold unconfirmed, the place free.

The module runs its own stack on a database of its own: a fake Stripe, a
booking service paying through it, and a webhook service reaching the booking
service through a proxy the tests can cut (to make an event dead).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from devtools.engines import free_port
from holdfast.contracts.booking.v1 import booking_pb2
from holdfast.contracts.webhooks.v1 import webhook_admin_pb2 as admin_pb
from holdfast.contracts.webhooks.v1 import webhook_admin_pb2_grpc
from tests.support.availability import eventually
from tests.support.booking import BookingClient, error_of
from tests.support.db import audit_actions
from tests.support.payments import (
    PaymentStack,
    checkout,
    hold_status,
    inbox_row,
    payment_stack,
    settled_row,
    until_status,
)
from tests.support.services import own_booking_app
from tests.support.stripe import stripe_client
from tests.support.stripe_events import event


@pytest.fixture(scope="module")
async def stack(database_url: str, redis: object) -> AsyncIterator[PaymentStack]:
    async with payment_stack(
        database_url,
        # The reconciler finishes a refund in flight at its next pass.
        booking={"refund_retry_delay_seconds": 0},
        # Quick to give up while the booking service is cut off: a dead letter.
        webhooks={"processor_max_attempts": 2},
    ) as running:
        yield running


@pytest.fixture
def shop(stack: PaymentStack, tenant: str) -> BookingClient:
    return BookingClient.on(stack.channel, tenant)


@dataclass
class LatePayment:
    """A payment made in time whose webhook did not come before the hold
    lapsed; the only place was then taken by `taker`."""

    resource_id: str
    slot_id: str
    hold: booking_pb2.Hold
    session_id: str
    completed: dict[str, Any]
    taker: booking_pb2.Hold

    @property
    def payment_ref(self) -> str:
        return str(self.completed["data"]["object"]["payment_intent"])

    @property
    def event_id(self) -> str:
        return str(self.completed["id"])


async def late_payment(stack: PaymentStack, shop: BookingClient) -> LatePayment:
    resource, [slot] = await shop.resource_with_slots(capacity=1)
    late = await shop.hold(resource.resource_id, [slot.slot_id], ttl_seconds=1)
    session = await checkout(shop, late.hold_id)
    completed = await stack.fake.pay(session.session_id, deliver=False)
    await until_status(shop, late.hold_id, booking_pb2.HOLD_STATUS_EXPIRED)
    taker = await shop.hold(resource.resource_id, [slot.slot_id])
    return LatePayment(
        resource.resource_id, slot.slot_id, late, session.session_id, completed, taker
    )


async def refunded_by_the_webhook(stack: PaymentStack, late: LatePayment) -> None:
    await stack.fake.deliver(late.event_id)
    row = await settled_row(stack.db, late.event_id)
    assert (row["status"], row["outcome"][:10]) == ("APPLIED", "refunded r")


async def assert_never_booked(stack: PaymentStack, shop: BookingClient, late: LatePayment) -> None:
    """The refunded payment did not become a booking: the hold is as it was
    left, the freed place is still free, and Stripe refunded exactly once."""
    hold = await hold_status(shop, late.hold.hold_id)
    assert hold.status == booking_pb2.HOLD_STATUS_EXPIRED
    assert hold.payment_ref == ""
    slot = await shop.slot(late.resource_id, late.slot_id)
    assert (slot.held, slot.booked) == (0, 0)
    assert "hold.confirmed" not in await audit_actions(stack.db, shop.tenant, late.hold.hold_id)
    assert [r.idempotency_key for r in stack.refund_requests(late.payment_ref)] == [
        f"refund:{late.payment_ref}"
    ]


async def test_webhook_first_then_the_reconciler_after_a_place_frees(
    stack: PaymentStack, shop: BookingClient
) -> None:
    late = await late_payment(stack, shop)
    await refunded_by_the_webhook(stack, late)

    await shop.release(late.taker.hold_id)  # a place frees
    await stack.reconcile()

    await assert_never_booked(stack, shop, late)
    status = await stack.db.fetchval(
        "SELECT status FROM checkouts WHERE session_id = $1", late.session_id
    )
    assert status == "COMPLETE"  # closed: no reconciler pass looks at it again


async def test_webhook_first_then_another_event_of_the_payment_after_a_place_frees(
    stack: PaymentStack, shop: BookingClient
) -> None:
    late = await late_payment(stack, shop)
    await refunded_by_the_webhook(stack, late)

    await shop.release(late.taker.hold_id)
    # Stripe tells of the same paid session again, in an event of its own
    # (a new event id, so the inbox does not take it for a duplicate).
    again = event("checkout.session.completed", late.completed["data"]["object"])
    await stack.post_event(again)

    row = await settled_row(stack.db, str(again["id"]))
    assert (row["status"], row["outcome"][:10]) == ("APPLIED", "refunded r")
    await assert_never_booked(stack, shop, late)


async def test_reconciler_first_then_the_webhook_after_a_place_frees(
    stack: PaymentStack, shop: BookingClient
) -> None:
    late = await late_payment(stack, shop)

    await stack.reconcile()  # finds the paid session first: no capacity, refund
    assert len(stack.refund_requests(late.payment_ref)) == 1
    await shop.release(late.taker.hold_id)
    await stack.fake.deliver(late.event_id)  # the webhook arrives at last

    row = await settled_row(stack.db, late.event_id)
    assert (row["status"], row["outcome"][:10]) == ("APPLIED", "refunded r")
    await stack.reconcile()
    await assert_never_booked(stack, shop, late)


async def test_a_dead_event_replayed_after_the_refund_and_a_freed_place(
    stack: PaymentStack, shop: BookingClient
) -> None:
    late = await late_payment(stack, shop)
    await stack.proxy.cut()  # the booking service is out of the processor's reach
    try:
        await stack.fake.deliver(late.event_id)
        # Each attempt waits out the call deadline (2 s), then it is dead.
        await eventually(
            lambda: inbox_row(stack.db, late.event_id),
            lambda r: r is not None and r["status"] == "DEAD",
            within=20,
        )
    finally:
        await stack.proxy.start()
    await stack.reconcile()  # meanwhile the reconciler refunds the payment
    await shop.release(late.taker.hold_id)

    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.webhooks.port}") as channel:
        admin = webhook_admin_pb2_grpc.WebhookAdminServiceStub(channel)
        await admin.ReplayEvent(admin_pb.ReplayEventRequest(event_id=late.event_id))

    row = await eventually(
        lambda: inbox_row(stack.db, late.event_id), lambda r: r["status"] in ("APPLIED", "IGNORED")
    )
    assert (row["status"], row["outcome"][:10]) == ("APPLIED", "refunded r")
    await assert_never_booked(stack, shop, late)


async def test_charge_refunded_before_the_payment_event(
    stack: PaymentStack, shop: BookingClient
) -> None:
    resource, [slot] = await shop.resource_with_slots(capacity=2)
    hold = await shop.hold(resource.resource_id, [slot.slot_id], ttl_seconds=3600)
    session = await checkout(shop, hold.hold_id)
    completed = await stack.fake.pay(session.session_id, deliver=False)
    payment = completed["data"]["object"]["payment_intent"]
    async with stripe_client(stack.fake) as client:  # an operator, in Stripe's dashboard
        await client.v1.refunds.create_async({"payment_intent": payment})
    [refunded] = [
        e
        for e in stack.fake.events("charge.refunded")
        if e["data"]["object"]["payment_intent"] == payment
    ]
    marked = await settled_row(stack.db, refunded["id"])

    await stack.fake.deliver(completed["id"])  # the payment's event comes after

    row = await settled_row(stack.db, completed["id"])
    assert marked["status"] == "APPLIED"
    assert (row["status"], row["outcome"][:10]) == ("APPLIED", "refunded r")
    current = await hold_status(shop, hold.hold_id)
    assert current.status == booking_pb2.HOLD_STATUS_HELD  # never confirmed by it
    [operators] = stack.refund_requests(payment)  # the only refund: none of ours
    assert operators.idempotency_key != f"refund:{payment}"
    stored = await stack.db.fetchrow("SELECT * FROM refunds WHERE payment_ref = $1", payment)
    assert (stored["hold_id"], stored["status"]) == (uuid.UUID(hold.hold_id), "SUCCEEDED")
    assert stored["cause"] == "AT_STRIPE"
    # The hold is still held: the customer may pay again, in a new attempt.
    again = await checkout(shop, hold.hold_id)
    assert (again.attempt, again.status) == (2, booking_pb2.CHECKOUT_STATUS_OPEN)


async def test_charge_refunded_after_the_refund_records_it_and_changes_nothing(
    stack: PaymentStack, shop: BookingClient
) -> None:
    late = await late_payment(stack, shop)
    await refunded_by_the_webhook(stack, late)
    [echo] = [
        e
        for e in stack.fake.events("charge.refunded")
        if e["data"]["object"]["payment_intent"] == late.payment_ref
    ]

    row = await settled_row(stack.db, echo["id"])

    assert row["status"] == "APPLIED"
    stored = await stack.db.fetchrow(
        "SELECT * FROM refunds WHERE payment_ref = $1", late.payment_ref
    )
    assert stored["status"] == "SUCCEEDED"
    assert stored["refund_id"].startswith("re_")
    await shop.release(late.taker.hold_id)
    await stack.reconcile()
    await assert_never_booked(stack, shop, late)


async def test_a_refund_in_flight_is_final_and_the_reconciler_finishes_it(
    stack: PaymentStack, shop: BookingClient
) -> None:
    late = await late_payment(stack, shop)
    # A booking replica that decides to refund, records it, and cannot reach
    # Stripe: as if it crashed between its decision and Stripe's answer.
    nowhere = f"http://127.0.0.1:{free_port()}"
    async with own_booking_app(
        stack.database_url,
        shop.tenant,
        stripe_api_key=stack.fake.api_key,
        stripe_api_base=nowhere,
        stripe_max_network_retries=0,
        stripe_timeout_seconds=2,
        refund_retry_delay_seconds=0,
        reconciler_interval_seconds=3600,
    ) as cut_off:
        failed = await error_of(
            cut_off.booking.ApplyPayment(
                booking_pb2.ApplyPaymentRequest(
                    hold_id=late.hold.hold_id, payment_ref=late.payment_ref
                ),
                metadata=cut_off.md,
            )
        )
    assert failed.code == grpc.StatusCode.UNAVAILABLE
    assert stack.refund_requests(late.payment_ref) == []
    await shop.release(late.taker.hold_id)

    refused = await error_of(shop.confirm(late.hold.hold_id, late.payment_ref))

    assert (refused.code, refused.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "PAYMENT_REFUNDED",
    )
    pending = await stack.db.fetchval(
        "SELECT status FROM refunds WHERE payment_ref = $1", late.payment_ref
    )
    assert pending == "PENDING"
    await stack.reconcile()
    done = await stack.db.fetchrow(
        "SELECT status, refund_id FROM refunds WHERE payment_ref = $1", late.payment_ref
    )
    assert done["status"] == "SUCCEEDED"
    assert done["refund_id"].startswith("re_")
    await assert_never_booked(stack, shop, late)


async def test_confirm_hold_refuses_a_refunded_payment_even_with_capacity(
    stack: PaymentStack, shop: BookingClient
) -> None:
    late = await late_payment(stack, shop)
    await refunded_by_the_webhook(stack, late)
    await shop.release(late.taker.hold_id)

    refused = await error_of(shop.confirm(late.hold.hold_id, late.payment_ref))
    other = await shop.confirm(late.taker.hold_id, "pi_other")  # a hold's own payment

    assert (refused.code, refused.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "PAYMENT_REFUNDED",
    )
    assert other.status == booking_pb2.HOLD_STATUS_CONFIRMED


async def test_racing_paths_either_book_the_payment_or_refund_it_never_both(
    stack: PaymentStack, shop: BookingClient
) -> None:
    """While a place frees, the payment arrives by several paths at once:
    every time, it becomes the booking or it is refunded, never both."""
    # Each on a resource of its own: made at once, they lapse together.
    lates = await asyncio.gather(*(late_payment(stack, shop) for _ in range(6)))

    async def race(late: LatePayment) -> None:
        apply = booking_pb2.ApplyPaymentRequest(
            hold_id=late.hold.hold_id, payment_ref=late.payment_ref
        )
        calls = [
            shop.release(late.taker.hold_id),  # the place frees meanwhile
            *(shop.booking.ApplyPayment(apply, metadata=shop.md) for _ in range(3)),
            shop.confirm(late.hold.hold_id, late.payment_ref),
            stack.reconcile(),
        ]
        await asyncio.gather(*calls, return_exceptions=True)

    await asyncio.gather(*(race(late) for late in lates))

    for late in lates:
        hold = await hold_status(shop, late.hold.hold_id)
        booked = hold.status == booking_pb2.HOLD_STATUS_CONFIRMED
        refund = await stack.db.fetchrow(
            "SELECT status FROM refunds WHERE payment_ref = $1", late.payment_ref
        )
        made = len(stack.refund_requests(late.payment_ref))
        slot = await shop.slot(late.resource_id, late.slot_id)
        if booked:
            assert (hold.payment_ref, refund, made, slot.booked) == (late.payment_ref, None, 0, 1)
        else:
            assert (refund["status"], made, slot.booked) == ("SUCCEEDED", 1, 0)
