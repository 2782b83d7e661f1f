"""`POST /stripe/webhook`: verify, store, answer, and nothing more.

The answer is quick and says only whether the event is safely stored: 200 once
it is in the inbox (or already was), 400 when it is not a genuine, recent,
well-formed Stripe event (nothing is stored), 413 when the body is too large,
and 503 when it cannot be stored, so that Stripe delivers it again later.
Applying the event happens afterwards, in the processor.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from opentelemetry import trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from holdfast.platform.context import CORRELATION_ID_KEY, REQUEST_ID_KEY, correlation_id_from
from holdfast.platform.http_tracing import UnrecordedServerSpan
from holdfast.platform.telemetry import correlation_scope, exporting
from services.webhooks.config import WebhooksSettings
from services.webhooks.inbox import NewEvent
from services.webhooks.metrics import WebhooksMetrics
from services.webhooks.repository import EventRepository
from services.webhooks.tracing import Cause, caused_by
from services.webhooks.verification import BadSignature, verify

log = logging.getLogger(__name__)


class TooLarge(Exception):
    pass


async def _read_capped(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLarge
    return bytes(body)


def _problem(status: int, detail: str, correlation_id: str) -> JSONResponse:
    headers = {"X-Request-Id": correlation_id}
    if status == 503:
        # Stripe keeps its own schedule; other senders learn when to retry.
        headers["Retry-After"] = "1"
    return JSONResponse(
        {"error": detail, "correlation_id": correlation_id}, status_code=status, headers=headers
    )


def _parse(body: bytes, correlation_id: str) -> tuple[NewEvent, Cause]:
    """The inbox row for a verified body and the request that caused the
    event, or ValueError if it is no event. The row keeps the cause's
    correlation id when the metadata names one, else the delivery's."""
    event: Any = orjson.loads(body)
    if not isinstance(event, dict) or event.get("object") != "event":
        raise ValueError("the body is not a Stripe event")
    event_id, event_type = event.get("id"), event.get("type")
    data = event.get("data")
    if not (isinstance(event_id, str) and event_id.startswith("evt_") and len(event_id) <= 255):
        raise ValueError("the event has no valid id")
    if not isinstance(event_type, str) or not event_type or len(event_type) > 100:
        raise ValueError("the event has no valid type")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
        raise ValueError("the event has no data.object with an id")
    created = event.get("created")
    if not isinstance(created, int):
        raise ValueError("the event has no created time")
    cause = caused_by(obj, correlation_id)
    new_event = NewEvent(
        event_id=event_id,
        type=event_type,
        object_id=obj["id"],
        created_at=datetime.fromtimestamp(created, UTC),
        livemode=bool(event.get("livemode")),
        payload=body.decode("utf-8"),
        correlation_id=cause.correlation_id,
    )
    return new_event, cause


def create_receiver(
    settings: WebhooksSettings,
    events: EventRepository,
    metrics: WebhooksMetrics,
    on_stored: Callable[[], None],
) -> Starlette:
    receiver = _Receiver(settings, events, metrics, on_stored)
    return Starlette(
        routes=[Route("/stripe/webhook", receiver.stripe_webhook, methods=["POST"])],
        middleware=_tracing(),
    )


def _tracing() -> list[Middleware]:
    """Server spans with the request's HTTP attributes when spans are
    exported (the ASGI receive/send steps left out as noise); otherwise an
    unrecorded one, for the ids its log lines carry."""
    if exporting():
        return [Middleware(OpenTelemetryMiddleware, exclude_spans=["receive", "send"])]
    return [Middleware(UnrecordedServerSpan)]


class _Receiver:
    def __init__(
        self,
        settings: WebhooksSettings,
        events: EventRepository,
        metrics: WebhooksMetrics,
        on_stored: Callable[[], None],
    ) -> None:
        self._settings = settings
        self._secrets = settings.webhook_secrets
        self._events = events
        self._metrics = metrics
        self._on_stored = on_stored

    async def stripe_webhook(self, request: Request) -> Response:
        started = time.perf_counter()
        correlation_id = correlation_id_from(
            request.headers.get(REQUEST_ID_KEY), request.headers.get(CORRELATION_ID_KEY)
        )
        with correlation_scope(correlation_id):
            response = await self._receive(request, correlation_id)
        self._metrics.acknowledged.labels(str(response.status_code)).observe(
            time.perf_counter() - started
        )
        return response

    async def _receive(self, request: Request, correlation_id: str) -> Response:
        try:
            body = await _read_capped(request, self._settings.webhook_max_body_bytes)
        except TooLarge:
            return _problem(413, "the body is larger than a Stripe event can be", correlation_id)
        except ClientDisconnect:
            return _problem(400, "the body did not arrive", correlation_id)
        try:
            verify(
                body,
                request.headers.get("stripe-signature"),
                self._secrets,
                self._settings.webhook_tolerance_seconds,
            )
            event, cause = _parse(body, correlation_id)
        except BadSignature as error:
            log.warning("webhook refused: %s", error)
            return _problem(400, str(error), correlation_id)
        except (ValueError, UnicodeDecodeError) as error:
            log.warning("webhook refused: %s", error)
            return _problem(400, f"not a Stripe event: {error}", correlation_id)
        span = trace.get_current_span()
        for link in cause.links:
            span.add_link(link.context, link.attributes)
        span.set_attributes({"stripe.event.id": event.event_id, "stripe.event.type": event.type})
        with correlation_scope(cause.correlation_id):
            return await self._store(event, cause.correlation_id)

    async def _store(self, event: NewEvent, correlation_id: str) -> Response:
        try:
            stored = await self._events.insert(event)
        except Exception:
            # Whatever the cause, the event is not safe: 503 makes Stripe
            # deliver it again later.
            log.exception("webhook event %s could not be stored", event.event_id)
            return _problem(503, "the event could not be stored; deliver it again", correlation_id)
        if stored:
            self._metrics.received.labels(event.type).inc()
            self._on_stored()
        log.info(
            "stripe event %s received",
            event.event_id,
            extra={"event_type": event.type, "duplicate": not stored},
        )
        return JSONResponse(
            {"received": True, "duplicate": not stored},
            headers={"X-Request-Id": correlation_id},
        )
