"""Applies stored Stripe events through the booking service, exactly once.

Workers take due events one at a time (see EventRepository.claim: one object's
events in order, never two at once), decide from the event and the state the
booking service reports, and record the outcome on the event in the same
transaction that held the claim. Every booking call is idempotent (confirming
or refunding a payment twice, releasing twice), so an event applied again
after a crash changes nothing: the booking service's compare-and-set
transitions are what make "exactly once" hold, the inbox is what makes
"never lost" hold.

Failures that may pass (the booking service or Stripe unavailable, a lock
timeout) are retried with exponential backoff; after the retry budget, or at
once for failures no retry can fix (an unknown hold, missing metadata), the
event is dead-lettered for an operator (`holdfast webhooks replay`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import grpc
import stripe
from opentelemetry.trace import SpanKind

from holdfast.contracts.booking.v1 import booking_pb2, booking_pb2_grpc
from holdfast.platform.context import TENANT_ID_KEY
from holdfast.platform.grpc_errors import details_of
from holdfast.platform.periodic import PeriodicTask
from holdfast.platform.telemetry import start_caused_span, working_in
from holdfast.platform.tenancy import ACTOR_KEY
from holdfast.tenancy import is_tenant_id
from services.webhooks.config import WebhooksSettings
from services.webhooks.metrics import WebhooksMetrics
from services.webhooks.repository import Claim, EventRepository, Outcome
from services.webhooks.tracing import caused_by

log = logging.getLogger(__name__)

ACTOR = "system:stripe-webhooks"
PAID = ("checkout.session.completed", "checkout.session.async_payment_succeeded")
UNPAID = ("checkout.session.async_payment_failed", "checkout.session.expired")
# Failures a retry may cure; anything else is a dead letter at once.
_TRANSIENT = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}


class Unapplicable(Exception):
    """The event can never apply as it is (e.g. it names no hold)."""


def _hold_of(obj: dict[str, Any]) -> tuple[str, str]:
    metadata = obj.get("metadata") or {}
    tenant = metadata.get("tenant_id")
    hold_id = metadata.get("hold_id") or obj.get("client_reference_id")
    if not isinstance(tenant, str) or not is_tenant_id(tenant):
        raise Unapplicable("the object's metadata names no valid tenant_id")
    if not isinstance(hold_id, str) or not hold_id:
        raise Unapplicable("the object names no hold (metadata.hold_id)")
    return tenant, hold_id


class EventProcessor:
    def __init__(
        self,
        events: EventRepository,
        booking: booking_pb2_grpc.BookingServiceAsyncStub,
        stripe_client: stripe.StripeClient | None,
        settings: WebhooksSettings,
        metrics: WebhooksMetrics,
    ) -> None:
        self._events = events
        self._booking = booking
        self._stripe = stripe_client
        self._settings = settings
        self._metrics = metrics
        self._wake = asyncio.Event()
        poll = settings.processor_poll_interval_seconds
        # Every worker is woken by an event stored (`wake`), or looks again
        # after the poll interval.
        self._workers = [
            PeriodicTask(
                f"stripe-events-{i}",
                self._process_all,
                interval=poll,
                log=log,
                skipped="stripe event processing paused",
                failed="stripe event processing failed",
                wake=self._wake,
            )
            for i in range(settings.processor_workers)
        ]
        # Keeps the dead-letter gauge current (what an alert should watch); a
        # failure must not end the watcher: the gauge would freeze.
        self._backlog = PeriodicTask(
            "stripe-dead-letters",
            self._count_dead_letters,
            interval=poll,
            log=log,
            skipped="dead letters not counted",
            failed="dead letters not counted",
        )

    def wake(self) -> None:
        """Called when an event was stored: a worker picks it up at once."""
        self._wake.set()

    async def process_one(self) -> bool:
        """Applies one due event, if there is one; True if it did."""
        async with self._events.claim() as claim:
            if claim is None:
                return False
            await self._process(claim)
            return True

    async def _process(self, claim: Claim) -> None:
        row = claim.row
        event_type: str = row["type"]
        started = time.perf_counter()
        event = json.loads(row["payload"])
        obj: dict[str, Any] = event["data"]["object"]
        cause = caused_by(obj, row["correlation_id"])
        span = start_caused_span(
            "stripe.event.apply",
            correlation_id=cause.correlation_id,
            links=cause.links,
            kind=SpanKind.CONSUMER,
            attributes={
                "stripe.event.id": row["event_id"],
                "stripe.event.type": event_type,
                "holdfast.attempt": row["attempt"],
            },
        )
        with working_in(span, cause.correlation_id):
            outcome = await self._outcome_of(event_type, obj, row["attempt"])
            span.set_attribute("holdfast.outcome", outcome.status)
        s = self._settings
        await claim.finish(outcome, s.processor_retry_base_seconds, s.processor_retry_max_seconds)
        self._metrics.processed.labels(event_type, outcome.status).inc()
        self._metrics.processing.labels(event_type).observe(time.perf_counter() - started)
        if outcome.status == "FAILED":
            self._metrics.retries.inc()
        elif outcome.status == "DEAD":
            self._metrics.dead_letters.inc()
            log.error("stripe event %s dead-lettered: %s", row["event_id"], outcome.error)

    async def _outcome_of(self, event_type: str, obj: dict[str, Any], attempt: int) -> Outcome:
        try:
            return await self._apply(event_type, obj)
        except Unapplicable as error:
            return Outcome("DEAD", error=str(error))
        except grpc.aio.AioRpcError as error:
            details = details_of(error)
            message = f"booking service: {details.code.name} {details.reason} {details.message}"
            if details.code not in _TRANSIENT:
                return Outcome("DEAD", error=message)
        except stripe.StripeError as error:
            message = f"stripe: {error}"
        if attempt >= self._settings.processor_max_attempts:
            return Outcome("DEAD", error=f"gave up after {attempt} attempts; last: {message}")
        return Outcome("FAILED", error=message)

    async def _apply(self, event_type: str, obj: dict[str, Any]) -> Outcome:
        if event_type in PAID:
            if event_type == PAID[0] and obj.get("payment_status") != "paid":
                return Outcome("IGNORED", "awaiting an asynchronous payment")
            tenant, hold_id = _hold_of(obj)
            payment_ref = obj.get("payment_intent")
            if not isinstance(payment_ref, str) or not payment_ref:
                raise Unapplicable("a paid session without a payment_intent")
            applied = await self._booking.ApplyPayment(
                booking_pb2.ApplyPaymentRequest(hold_id=hold_id, payment_ref=payment_ref),
                metadata=_metadata(tenant),
                timeout=self._settings.booking_call_timeout_seconds,
                wait_for_ready=True,
            )
            if applied.outcome == booking_pb2.PAYMENT_OUTCOME_REFUNDED:
                self._metrics.refunds.inc()
                refund = applied.refund_id or "(Stripe's refund id unknown)"
                return Outcome("APPLIED", f"refunded {refund}: {applied.hold.status_reason}")
            return Outcome("APPLIED", "confirmed")
        if event_type in UNPAID:
            tenant, hold_id = _hold_of(obj)
            return await self._release(tenant, hold_id, event_type.rsplit(".", 1)[-1])
        if event_type == "charge.refunded":
            return await self._refunded(obj)
        return Outcome("IGNORED", "holdfast does not act on this event type")

    async def _release(self, tenant: str, hold_id: str, why: str) -> Outcome:
        try:
            released = await self._booking.ReleaseHold(
                booking_pb2.ReleaseHoldRequest(hold_id=hold_id, reason=f"checkout {why}"),
                metadata=_metadata(tenant),
                timeout=self._settings.booking_call_timeout_seconds,
                wait_for_ready=True,
            )
        except grpc.aio.AioRpcError as error:
            details = details_of(error)
            if details.reason != "HOLD_NOT_RELEASABLE":
                raise
            status = (details.metadata or {}).get("status", "")
            return Outcome("IGNORED", f"the hold is {status}: nothing to release")
        return Outcome("APPLIED", f"hold {booking_pb2.HoldStatus.Name(released.hold.status)}")

    async def _refunded(self, charge: dict[str, Any]) -> Outcome:
        if not charge.get("refunded"):
            return Outcome("IGNORED", "a partial refund leaves the booking as it is")
        payment_ref = charge.get("payment_intent")
        if not isinstance(payment_ref, str) or not payment_ref:
            return Outcome("IGNORED", "the charge has no payment intent")
        metadata = charge.get("metadata") or {}
        if "hold_id" not in metadata:
            metadata = await self._payment_metadata(payment_ref)
        tenant, hold_id = _hold_of({"metadata": metadata})
        try:
            marked = await self._booking.MarkBookingRefunded(
                booking_pb2.MarkBookingRefundedRequest(
                    booking_id=hold_id,
                    payment_ref=payment_ref,
                    reason="payment refunded at Stripe",
                    refund_id=_latest_refund_id(charge),
                ),
                metadata=_metadata(tenant),
                timeout=self._settings.booking_call_timeout_seconds,
                wait_for_ready=True,
            )
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

    async def _payment_metadata(self, payment_ref: str) -> dict[str, Any]:
        """Stripe does not copy a payment intent's metadata onto its charges."""
        if self._stripe is None:
            raise Unapplicable("the charge names no hold and Stripe is not configured")
        intent = await self._stripe.v1.payment_intents.retrieve_async(payment_ref)
        metadata: Any = intent.metadata
        return dict(metadata.to_dict()) if metadata else {}

    async def _process_all(self) -> None:
        # The wake event is cleared before this pass looks (PeriodicTask), so
        # an event stored meanwhile wakes the worker again at once.
        while await self.process_one():
            pass

    async def _count_dead_letters(self) -> None:
        self._metrics.dead_letter_backlog.set(await self._events.dead_letters())

    def start(self) -> None:
        for worker in self._workers:
            worker.start()
        self._backlog.start()

    async def stop(self) -> None:
        await self._backlog.stop()
        for worker in self._workers:
            await worker.stop()


def _latest_refund_id(charge: dict[str, Any]) -> str:
    """The newest refund's id, when the event's charge lists its refunds
    (API versions since 2022-11-15 leave the list out)."""
    refunds = charge.get("refunds")
    data = refunds.get("data") if isinstance(refunds, dict) else None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return str(data[0].get("id") or "")
    return ""


def _metadata(tenant: str) -> tuple[tuple[str, str], ...]:
    return ((TENANT_ID_KEY, tenant), (ACTOR_KEY, ACTOR))
