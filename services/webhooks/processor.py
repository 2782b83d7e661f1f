"""Applies stored Stripe events through the booking service, exactly once.

Workers take due events one at a time (see EventRepository.claim: one object's
events in order, never two at once), hand each to its type's handler (the
table in services.webhooks.events), and record the outcome on the event in
the same transaction that held the claim. Every booking call is idempotent (confirming
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
import contextlib
import json
import logging
import time
from typing import Any

import grpc
import stripe
from opentelemetry.trace import SpanKind

from holdfast.contracts.booking.v1 import booking_pb2_grpc
from holdfast.platform.background import BackgroundTask
from holdfast.platform.errors import DomainError
from holdfast.platform.grpc_errors import details_of
from holdfast.platform.telemetry import start_caused_span, working_in
from services.webhooks.booking_calls import BookingCalls
from services.webhooks.config import WebhooksSettings
from services.webhooks.events import HANDLERS, NOT_HANDLED, Effects, Unapplicable
from services.webhooks.inbox import Outcome
from services.webhooks.metrics import WebhooksMetrics
from services.webhooks.repository import Claim, EventRepository
from services.webhooks.tracing import caused_by

log = logging.getLogger(__name__)

# Failures a retry may cure; anything else is a dead letter at once.
_TRANSIENT = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}


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
        self._effects = Effects(
            BookingCalls(booking, settings.booking_call_timeout_seconds), stripe_client, metrics
        )
        self._settings = settings
        self._metrics = metrics
        self._wake = asyncio.Event()
        self._workers = [
            BackgroundTask(f"stripe-events-{i}", self._work)
            for i in range(settings.processor_workers)
        ]
        self._backlog = BackgroundTask("stripe-dead-letters", self._watch_dead_letters)

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
        event = claim.event
        event_type = event.type
        started = time.perf_counter()
        obj: dict[str, Any] = json.loads(event.payload)["data"]["object"]
        cause = caused_by(obj, event.correlation_id)
        span = start_caused_span(
            "stripe.event.apply",
            correlation_id=cause.correlation_id,
            links=cause.links,
            kind=SpanKind.CONSUMER,
            attributes={
                "stripe.event.id": event.event_id,
                "stripe.event.type": event_type,
                "holdfast.attempt": event.attempt,
            },
        )
        with working_in(span, cause.correlation_id):
            outcome = await self._outcome_of(event_type, obj, event.attempt)
            span.set_attribute("holdfast.outcome", outcome.status)
        s = self._settings
        await claim.finish(outcome, s.processor_retry_base_seconds, s.processor_retry_max_seconds)
        self._metrics.processed.labels(event_type, outcome.status).inc()
        self._metrics.processing.labels(event_type).observe(time.perf_counter() - started)
        if outcome.status == "FAILED":
            self._metrics.retries.inc()
        elif outcome.status == "DEAD":
            self._metrics.dead_letters.inc()
            log.error("stripe event %s dead-lettered: %s", event.event_id, outcome.error)

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
        handler = HANDLERS.get(event_type)
        if handler is None:
            return NOT_HANDLED
        return await handler.handle(self._effects, obj)

    async def _work(self) -> None:
        poll = self._settings.processor_poll_interval_seconds
        while True:
            # Cleared before looking, so an event stored while this worker
            # looks wakes it again at once rather than after the poll interval.
            self._wake.clear()
            try:
                while await self.process_one():
                    pass
            except DomainError as error:
                log.warning("stripe event processing paused: %s", error)
            except Exception:
                log.exception("stripe event processing failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(poll):
                    await self._wake.wait()

    async def _watch_dead_letters(self) -> None:
        """Keeps the dead-letter gauge current: what an alert should watch."""
        while True:
            try:
                self._metrics.dead_letter_backlog.set(await self._events.dead_letters())
            except DomainError as error:
                log.warning("dead letters not counted: %s", error)
            except Exception:
                # Anything else must not end the watcher: the gauge would freeze.
                log.exception("dead letters not counted")
            await asyncio.sleep(self._settings.processor_poll_interval_seconds)

    def start(self) -> None:
        for worker in self._workers:
            worker.start()
        self._backlog.start()

    async def stop(self) -> None:
        await self._backlog.stop()
        for worker in self._workers:
            await worker.stop()
