"""Cancelling a paid booking gives the money back (invariant 10): a full
refund at Stripe, once per payment, recorded in the audit log; a caller may
ask for no refund, and that is recorded too. Over gRPC, over HTTP through the
gateway, and from the `holdfast` command line.

The module runs its own stack on a database of its own: a fake Stripe, a
booking service paying through it, the webhook service (so `charge.refunded`
comes back as Stripe sends it), availability and the gateway.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from devtools.engines import free_port
from holdfast.contracts.booking.v1 import booking_pb2
from holdfast.tenancy.keys import KeyRepository
from tests.support.booking import BookingClient
from tests.support.db import audit_actions
from tests.support.gateway import key_for, problem_of
from tests.support.payments import (
    PaymentStack,
    checkout,
    hold_status,
    payment_stack,
    settled_row,
    until_status,
)
from tests.support.services import own_booking_app
from tests.support.stripe import stripe_client


@pytest.fixture(scope="module")
async def stack(database_url: str, redis: object) -> AsyncIterator[PaymentStack]:
    async with payment_stack(
        database_url,
        with_gateway=True,
        # The reconciler finishes a refund in flight at its next pass.
        booking={"refund_retry_delay_seconds": 0},
    ) as running:
        yield running


@pytest.fixture
def shop(stack: PaymentStack, tenant: str) -> BookingClient:
    return BookingClient.on(stack.channel, tenant)


@dataclass
class Paid:
    resource_id: str
    slot_id: str
    booking: booking_pb2.Hold

    @property
    def id(self) -> str:
        return self.booking.hold_id

    @property
    def payment_ref(self) -> str:
        return self.booking.payment_ref


async def paid_booking(stack: PaymentStack, shop: BookingClient, quantity: int = 2) -> Paid:
    """A booking paid by card through Stripe Checkout and its webhook."""
    resource, [slot] = await shop.resource_with_slots(capacity=4)
    hold = await shop.hold(resource.resource_id, [slot.slot_id], quantity=quantity)
    session = await checkout(shop, hold.hold_id)
    await stack.fake.pay(session.session_id)
    booking = await until_status(shop, hold.hold_id, booking_pb2.HOLD_STATUS_CONFIRMED)
    return Paid(resource.resource_id, slot.slot_id, booking)


async def cancel(
    client: BookingClient,
    booking_id: str,
    refund: booking_pb2.RefundMode.ValueType = booking_pb2.REFUND_MODE_UNSPECIFIED,
    reason: str = "",
) -> booking_pb2.CancelBookingResponse:
    response: booking_pb2.CancelBookingResponse = await client.booking.CancelBooking(
        booking_pb2.CancelBookingRequest(booking_id=booking_id, reason=reason, refund=refund),
        metadata=client.md,
    )
    return response


async def audit_details(db: asyncpg.Pool, booking_id: str, action: str) -> dict[str, Any]:
    raw = await db.fetchval(
        "SELECT details FROM audit_log WHERE entity_id = $1::uuid AND action = $2",
        booking_id,
        action,
    )
    details: dict[str, Any] = json.loads(raw)
    return details


def charge_refunded_of(stack: PaymentStack, payment_ref: str) -> list[dict[str, Any]]:
    return [
        e
        for e in stack.fake.events("charge.refunded")
        if e["data"]["object"]["payment_intent"] == payment_ref
    ]


async def test_cancelling_a_paid_booking_refunds_it_in_full_once(
    stack: PaymentStack, shop: BookingClient
) -> None:
    paid = await paid_booking(stack, shop)

    cancelled = await shop.cancel(paid.id)  # no refund mode given: the full refund

    assert cancelled.status == booking_pb2.HOLD_STATUS_REFUNDED
    [refund] = stack.refund_requests(paid.payment_ref)
    assert refund.idempotency_key == f"refund:{paid.payment_ref}"
    assert "amount" not in refund.params  # everything the payment took
    slot = await shop.slot(paid.resource_id, paid.slot_id)
    assert (slot.held, slot.booked) == (0, 0)
    stored = await stack.db.fetchrow(
        "SELECT * FROM refunds WHERE payment_ref = $1", paid.payment_ref
    )
    assert (stored["cause"], stored["status"]) == ("CANCELLATION", "SUCCEEDED")
    assert stored["amount_minor"] == paid.booking.total.amount_minor
    assert stored["refund_id"].startswith("re_")
    assert (await audit_actions(stack.db, shop.tenant, paid.id))[-4:] == [
        "hold.cancelled",
        "hold.refund_requested",
        "hold.payment_refunded",
        "hold.refunded",
    ]
    assert (await audit_details(stack.db, paid.id, "hold.cancelled"))["refund"] == "full"

    # Stripe's charge.refunded for the same payment, and the caller trying again.
    [echo] = charge_refunded_of(stack, paid.payment_ref)
    await settled_row(stack.db, echo["id"])
    again = await cancel(shop, paid.id)

    assert again.booking.status == booking_pb2.HOLD_STATUS_REFUNDED
    assert again.refund.status == booking_pb2.REFUND_STATUS_SUCCEEDED
    assert again.refund.refund_id == stored["refund_id"]
    assert len(stack.refund_requests(paid.payment_ref)) == 1
    assert (await hold_status(shop, paid.id)).status == booking_pb2.HOLD_STATUS_REFUNDED


async def test_the_response_tells_the_refund(stack: PaymentStack, shop: BookingClient) -> None:
    paid = await paid_booking(stack, shop, quantity=3)

    answer = await cancel(shop, paid.id, booking_pb2.REFUND_MODE_FULL, reason="storm")

    assert answer.booking.status == booking_pb2.HOLD_STATUS_REFUNDED
    assert answer.booking.status_reason.startswith("storm")
    assert answer.refund.payment_ref == paid.payment_ref
    assert answer.refund.refund_id.startswith("re_")
    assert answer.refund.amount == paid.booking.total
    assert answer.refund.status == booking_pb2.REFUND_STATUS_SUCCEEDED


async def test_a_caller_may_cancel_without_a_refund_and_that_is_recorded(
    stack: PaymentStack, shop: BookingClient
) -> None:
    paid = await paid_booking(stack, shop)

    answer = await cancel(shop, paid.id, booking_pb2.REFUND_MODE_NONE, reason="no-show")

    assert answer.booking.status == booking_pb2.HOLD_STATUS_CANCELLED
    assert not answer.HasField("refund")
    assert stack.refund_requests(paid.payment_ref) == []
    details = await audit_details(stack.db, paid.id, "hold.cancelled")
    assert details["refund"] == "none"
    assert details["payment_ref"] == paid.payment_ref
    slot = await shop.slot(paid.resource_id, paid.slot_id)
    assert (slot.held, slot.booked) == (0, 0)

    # An operator refunds it at Stripe later: the booking says so.
    async with stripe_client(stack.fake) as client:
        await client.v1.refunds.create_async({"payment_intent": paid.payment_ref})
    refunded = await until_status(shop, paid.id, booking_pb2.HOLD_STATUS_REFUNDED)
    assert refunded.status_reason == "payment refunded at Stripe"
    slot = await shop.slot(paid.resource_id, paid.slot_id)
    assert (slot.held, slot.booked) == (0, 0)


async def test_concurrent_cancellations_refund_once(
    stack: PaymentStack, shop: BookingClient
) -> None:
    paid = await paid_booking(stack, shop)

    answers = await asyncio.gather(*(cancel(shop, paid.id) for _ in range(6)))

    # Each caller finishes the refund still pending when it looks, with the
    # same idempotency key; on a loaded machine a caller's Stripe call may
    # time out, and that caller is told the truth: cancelled, refund pending.
    refunded = [a for a in answers if a.booking.status == booking_pb2.HOLD_STATUS_REFUNDED]
    pending = [a for a in answers if a not in refunded]
    assert refunded
    assert len({a.refund.refund_id for a in refunded}) == 1
    for answer in pending:
        assert answer.booking.status == booking_pb2.HOLD_STATUS_CANCELLED
        assert answer.refund.status == booking_pb2.REFUND_STATUS_PENDING
    assert (await hold_status(shop, paid.id)).status == booking_pb2.HOLD_STATUS_REFUNDED
    assert len(stack.refund_requests(paid.payment_ref)) == 1
    rows = await stack.db.fetchval(
        "SELECT count(*) FROM refunds WHERE payment_ref = $1", paid.payment_ref
    )
    assert rows == 1
    actions = await audit_actions(stack.db, shop.tenant, paid.id)
    assert (actions.count("hold.cancelled"), actions.count("hold.payment_refunded")) == (1, 1)


async def cancelled_while_stripe_is_away(
    stack: PaymentStack, shop: BookingClient, paid: Paid
) -> booking_pb2.CancelBookingResponse:
    """Cancels through a booking replica that cannot reach Stripe: the
    cancellation and the refund it owes are recorded; the refund is not made."""
    async with own_booking_app(
        stack.database_url,
        shop.tenant,
        stripe_api_key=stack.fake.api_key,
        stripe_api_base=f"http://127.0.0.1:{free_port()}",
        stripe_max_network_retries=0,
        stripe_timeout_seconds=2,
        reconciler_interval_seconds=3600,
        # The reconciler may make the refund at its next pass.
        refund_retry_delay_seconds=0,
    ) as cut_off:
        return await cancel(cut_off, paid.id)


async def test_a_refund_that_never_reached_stripe_is_made_by_cancelling_again(
    stack: PaymentStack, shop: BookingClient
) -> None:
    paid = await paid_booking(stack, shop)

    pending = await cancelled_while_stripe_is_away(stack, shop, paid)

    assert pending.booking.status == booking_pb2.HOLD_STATUS_CANCELLED
    assert pending.refund.status == booking_pb2.REFUND_STATUS_PENDING
    assert stack.refund_requests(paid.payment_ref) == []
    slot = await shop.slot(paid.resource_id, paid.slot_id)
    assert (slot.held, slot.booked) == (0, 0)

    again = await cancel(shop, paid.id, booking_pb2.REFUND_MODE_NONE)  # the decision stands

    assert again.booking.status == booking_pb2.HOLD_STATUS_REFUNDED
    assert again.refund.status == booking_pb2.REFUND_STATUS_SUCCEEDED
    assert len(stack.refund_requests(paid.payment_ref)) == 1


async def test_a_refund_that_never_reached_stripe_is_made_by_the_reconciler(
    stack: PaymentStack, shop: BookingClient
) -> None:
    paid = await paid_booking(stack, shop)
    await cancelled_while_stripe_is_away(stack, shop, paid)

    await stack.reconcile()

    assert (await hold_status(shop, paid.id)).status == booking_pb2.HOLD_STATUS_REFUNDED
    [refund] = stack.refund_requests(paid.payment_ref)
    assert refund.idempotency_key == f"refund:{paid.payment_ref}"


async def test_stripes_word_of_the_refund_arriving_first_keeps_the_cancellation_reason(
    stack: PaymentStack, shop: BookingClient
) -> None:
    """Stripe's charge.refunded can reach the booking service before the
    canceller records the refund it asked for (a race seen in CI): the booking
    still says why it ended, as when the canceller records it first."""
    paid = await paid_booking(stack, shop)
    pending = await cancelled_while_stripe_is_away(stack, shop, paid)
    assert pending.refund.status == booking_pb2.REFUND_STATUS_PENDING

    marked = await shop.booking.MarkBookingRefunded(
        booking_pb2.MarkBookingRefundedRequest(
            booking_id=paid.id,
            payment_ref=paid.payment_ref,
            reason="payment refunded at Stripe",
            refund_id="re_made_elsewhere",
        ),
        metadata=shop.md,
    )

    assert marked.booking.status == booking_pb2.HOLD_STATUS_REFUNDED
    assert marked.booking.status_reason == "cancelled by caller; refunded in full"
    again = await cancel(shop, paid.id)
    assert again.refund.status == booking_pb2.REFUND_STATUS_SUCCEEDED
    assert again.refund.refund_id == "re_made_elsewhere"


async def test_the_gateway_cancels_with_or_without_a_refund(
    stack: PaymentStack, shop: BookingClient, tenant: str
) -> None:
    assert stack.gateway is not None
    auth = await key_for(KeyRepository(stack.db), tenant)
    kept = await paid_booking(stack, shop)
    refunded = await paid_booking(stack, shop)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{stack.gateway.port}", headers=auth, timeout=10
    ) as api:
        bad = await api.post(f"/v1/bookings/{kept.id}/cancel", json={"refund": "half"})
        without = await api.post(
            f"/v1/bookings/{kept.id}/cancel", json={"refund": "none", "reason": "no-show"}
        )
        full = await api.post(f"/v1/bookings/{refunded.id}/cancel")

    problem = problem_of(bad, 422, "INVALID_ARGUMENT")
    assert [e["field"] for e in problem["errors"]] == ["refund"]
    assert without.status_code == 200, without.text
    assert (without.json()["status"], without.json()["refund"]) == ("cancelled", None)
    assert full.status_code == 200, full.text
    body = full.json()
    assert body["status"] == "refunded"
    assert body["refund"]["status"] == "succeeded"
    assert body["refund"]["payment_ref"] == refunded.payment_ref
    assert body["refund"]["amount"] == {"currency": "EUR", "amount_minor": 5000}
    assert stack.refund_requests(kept.payment_ref) == []
    assert len(stack.refund_requests(refunded.payment_ref)) == 1


async def test_the_command_line_cancels_without_a_refund_when_asked(
    stack: PaymentStack, shop: BookingClient
) -> None:
    paid = await paid_booking(stack, shop)
    holdfast = Path(sys.executable).with_name("holdfast")
    target = f"127.0.0.1:{stack.booking.port}"
    common = ["--target", target, "--tenant", shop.tenant]

    bad = await asyncio.create_subprocess_exec(
        holdfast, "bookings", "cancel", paid.id, "--refund", "half", *common,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, bad_err = await bad.communicate()
    done = await asyncio.create_subprocess_exec(
        holdfast, "bookings", "cancel", paid.id, "--refund", "none", *common,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await done.communicate()

    assert bad.returncode == 2
    assert b"invalid choice" in bad_err
    assert done.returncode == 0
    answer = json.loads(out)
    assert answer["booking"]["status"] == "HOLD_STATUS_CANCELLED"
    assert "refund" not in answer
    assert stack.refund_requests(paid.payment_ref) == []
    assert uuid.UUID(answer["booking"]["holdId"]) == uuid.UUID(paid.id)
