"""The Stripe events holdfast handles: one table, event type -> handler.

Handling a new event is one handler function here and one row in `HANDLERS`.
The table is the list of handled events: the processor dispatches from it
(any other type is stored and ignored), and the fake Stripe's endpoint, the
test payment stack and the README's list of events to enable in Stripe's
dashboard read it or are held to it (tests/unit/webhooks/test_stripe_events.py).

A handler gets the event's object (`data.object`) and what it may act
through, and says how the event ended; it raises `Unapplicable` for an event
that can never apply, and lets the booking service's and Stripe's errors
through (the processor decides which of them a retry may cure).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import grpc
import stripe

from holdfast.contracts.booking.v1 import booking_pb2
from holdfast.platform.grpc_errors import details_of
from holdfast.tenancy import is_tenant_id
from services.webhooks.booking_calls import BookingCalls
from services.webhooks.inbox import Outcome
from services.webhooks.metrics import WebhooksMetrics

StripeObject = dict[str, Any]


class Unapplicable(Exception):
    """The event can never apply as it is (e.g. it names no hold)."""


@dataclass(frozen=True)
class Effects:
    """What a handler acts through."""

    booking: BookingCalls
    stripe: stripe.StripeClient | None
    metrics: WebhooksMetrics


Handle = Callable[[Effects, StripeObject], Awaitable[Outcome]]


@dataclass(frozen=True)
class EventHandler:
    handle: Handle
    description: str  # one line: what holdfast does on the event


# --- checkout sessions --------------------------------------------------------


async def session_completed(effects: Effects, session: StripeObject) -> Outcome:
    if session.get("payment_status") != "paid":
        return Outcome("IGNORED", "awaiting an asynchronous payment")
    return await _apply_payment(effects, session)


async def async_payment_succeeded(effects: Effects, session: StripeObject) -> Outcome:
    return await _apply_payment(effects, session)


async def async_payment_failed(effects: Effects, session: StripeObject) -> Outcome:
    return await _release(effects, session, "checkout async_payment_failed")


async def session_expired(effects: Effects, session: StripeObject) -> Outcome:
    return await _release(effects, session, "checkout expired")


async def _apply_payment(effects: Effects, session: StripeObject) -> Outcome:
    tenant, hold_id = hold_of(session)
    payment_ref = session.get("payment_intent")
    if not isinstance(payment_ref, str) or not payment_ref:
        raise Unapplicable("a paid session without a payment_intent")
    applied = await effects.booking.apply_payment(tenant, hold_id, payment_ref)
    if applied.outcome == booking_pb2.PAYMENT_OUTCOME_REFUNDED:
        effects.metrics.refunds.inc()
        refund = applied.refund_id or "(Stripe's refund id unknown)"
        return Outcome("APPLIED", f"refunded {refund}: {applied.hold.status_reason}")
    return Outcome("APPLIED", "confirmed")


async def _release(effects: Effects, session: StripeObject, reason: str) -> Outcome:
    tenant, hold_id = hold_of(session)
    try:
        released = await effects.booking.release_hold(tenant, hold_id, reason)
    except grpc.aio.AioRpcError as error:
        details = details_of(error)
        if details.reason != "HOLD_NOT_RELEASABLE":
            raise
        status = (details.metadata or {}).get("status", "")
        return Outcome("IGNORED", f"the hold is {status}: nothing to release")
    return Outcome("APPLIED", f"hold {booking_pb2.HoldStatus.Name(released.hold.status)}")


# --- charges ------------------------------------------------------------------


async def charge_refunded(effects: Effects, charge: StripeObject) -> Outcome:
    if not charge.get("refunded"):
        return Outcome("IGNORED", "a partial refund leaves the booking as it is")
    payment_ref = charge.get("payment_intent")
    if not isinstance(payment_ref, str) or not payment_ref:
        return Outcome("IGNORED", "the charge has no payment intent")
    metadata = charge.get("metadata") or {}
    if "hold_id" not in metadata:
        metadata = await _payment_metadata(effects, payment_ref)
    tenant, hold_id = hold_of({"metadata": metadata})
    request = booking_pb2.MarkBookingRefundedRequest(
        booking_id=hold_id,
        payment_ref=payment_ref,
        reason="payment refunded at Stripe",
        refund_id=_latest_refund_id(charge),
    )
    try:
        marked = await effects.booking.mark_booking_refunded(tenant, request)
    except grpc.aio.AioRpcError as error:
        if details_of(error).reason != "BOOKING_NOT_REFUNDABLE":
            raise
        return Outcome("IGNORED", "the payment belongs to another hold")
    booking = marked.booking
    refunded = booking.status == booking_pb2.HOLD_STATUS_REFUNDED
    if refunded and booking.payment_ref == payment_ref:
        return Outcome("APPLIED", "booking refunded")
    # Recorded all the same: a refunded payment never confirms the hold.
    return Outcome("APPLIED", "payment recorded as refunded; it is no booking")


async def _payment_metadata(effects: Effects, payment_ref: str) -> dict[str, Any]:
    """Stripe does not copy a payment intent's metadata onto its charges."""
    if effects.stripe is None:
        raise Unapplicable("the charge names no hold and Stripe is not configured")
    intent = await effects.stripe.v1.payment_intents.retrieve_async(payment_ref)
    metadata: Any = intent.metadata
    return dict(metadata.to_dict()) if metadata else {}


def _latest_refund_id(charge: StripeObject) -> str:
    """The newest refund's id, when the event's charge lists its refunds
    (API versions since 2022-11-15 leave the list out)."""
    refunds = charge.get("refunds")
    data = refunds.get("data") if isinstance(refunds, dict) else None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return str(data[0].get("id") or "")
    return ""


def hold_of(obj: StripeObject) -> tuple[str, str]:
    """The tenant and hold an object's metadata names (the checkout session's
    and its payment intent's: holdfast sets both)."""
    metadata = obj.get("metadata") or {}
    tenant = metadata.get("tenant_id")
    hold_id = metadata.get("hold_id") or obj.get("client_reference_id")
    if not isinstance(tenant, str) or not is_tenant_id(tenant):
        raise Unapplicable("the object's metadata names no valid tenant_id")
    if not isinstance(hold_id, str) or not hold_id:
        raise Unapplicable("the object names no hold (metadata.hold_id)")
    return tenant, hold_id


# --- the table ----------------------------------------------------------------

HANDLERS: Mapping[str, EventHandler] = MappingProxyType(
    {
        "checkout.session.completed": EventHandler(
            session_completed,
            "a checkout paid: confirms the hold, or refunds a payment that cannot become"
            " the booking; an asynchronous payment still to settle is ignored",
        ),
        "checkout.session.async_payment_succeeded": EventHandler(
            async_payment_succeeded,
            "an asynchronous payment settled: as a paid checkout.session.completed",
        ),
        "checkout.session.async_payment_failed": EventHandler(
            async_payment_failed,
            "an asynchronous payment failed: releases the hold unless it is confirmed",
        ),
        "checkout.session.expired": EventHandler(
            session_expired,
            "a checkout expired unpaid: releases the hold unless it is confirmed",
        ),
        "charge.refunded": EventHandler(
            charge_refunded,
            "a payment refunded in full (e.g. in Stripe's dashboard): marks its booking"
            " REFUNDED, or records that the payment can never become one",
        ),
    }
)

# What to enable on holdfast's webhook endpoint at Stripe.
HANDLED_EVENTS = frozenset(HANDLERS)

NOT_HANDLED = Outcome("IGNORED", "holdfast does not act on this event type")
