"""One booking, followed the way an operator follows it: in the traces the
four services export over OTLP (to this test's collector instead of Jaeger),
in their log lines, and in their /metrics.

The customer's requests carry one X-Request-Id and the traceparent of the
customer's page (as a browser with OpenTelemetry sends it), so the booking is
one trace from the gateway down; the work it causes later (publishing the
change, invalidating caches, Stripe's webhook) is in traces of its own that
link back to it.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.availability import eventually
from tests.support.metrics import Scrape, scrape, scraped
from tests.support.otlp import Span, TraceCollector
from tests.support.redis_server import RedisServer
from tests.support.stack import SERVICES, Stack, api_key, harbour_tour, running_stack

pytestmark = pytest.mark.e2e

WINDOW = {"start": "2031-05-31T00:00:00Z", "end": "2031-06-30T00:00:00Z"}
GATEWAY, BOOKING, AVAILABILITY, WEBHOOKS = (
    f"holdfast-{name}" for name in ("gateway", "booking", "availability", "webhooks")
)
CORRELATION = "holdfast.correlation_id"


@pytest.fixture
async def collector() -> AsyncIterator[TraceCollector]:
    collector = TraceCollector()
    await collector.start()
    yield collector
    await collector.stop()


@pytest.fixture
async def stack(
    own_database: str, redis_server: RedisServer, collector: TraceCollector, tmp_path: Path
) -> AsyncIterator[Stack]:
    otel = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.port}",
        # Export every 100 ms rather than every 5 s: the test waits for spans.
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_TRACES_SAMPLER": "parentbased_always_on",
    }
    async with running_stack(own_database, redis_server.url, tmp_path, otel) as running:
        yield running


def with_links(spans: list[Span], trace_id: str) -> list[Span]:
    """The spans of the trace and of every trace linked to it, transitively:
    what an operator reaches from the booking's trace by following links."""
    traces = {trace_id}
    grew = True
    while grew:
        linked = {s.trace_id for s in spans if any(link.trace_id in traces for link in s.links)}
        grew = not linked <= traces
        traces |= linked
    return [s for s in spans if s.trace_id in traces]


def cross_service_edges(spans: list[Span]) -> set[tuple[str, str]]:
    """(parent, child) for every parent/child pair whose spans are in different services."""
    by_id = {s.span_id: s for s in spans}
    return {
        (str(by_id[s.parent_span_id]), str(s))
        for s in spans
        if s.parent_span_id in by_id and by_id[s.parent_span_id].service != s.service
    }


def call(client: str, server: str, method: str) -> tuple[str, str]:
    """The (client span, server span) pair of one gRPC call, as named in str(Span)."""
    return f"{client}:CLIENT:{method}", f"{server}:SERVER:{method}"


BOOKING_RPC = "/holdfast.booking.v1.BookingService/"
AVAILABILITY_RPC = "/holdfast.availability.v1.AvailabilityService/"


def log_lines(log: Path) -> list[dict[str, Any]]:
    lines = []
    for text in log.read_text().splitlines():
        try:
            lines.append(json.loads(text))
        except ValueError:
            continue  # e.g. a line the Python runtime wrote before logging was set up
    return lines


async def scrape_all(stack: Stack) -> dict[str, Scrape]:
    return {name: await scrape(url) for name, url in stack.metrics.items()}


@dataclass
class Booking:
    """One customer's booking: its request id, its page's trace and its hold."""

    request_id: str
    trace_id: str
    hold: str


async def _book_as_one_customer(
    api: httpx.AsyncClient, stack: Stack, resource: str, slot: str
) -> Booking:
    # The customer's booking: one request id, one page trace.
    request_id = f"booking-{uuid.uuid4().hex}"
    trace_id = secrets.token_hex(16)

    def customer() -> dict[str, str]:
        return {
            "X-Request-Id": request_id,
            "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01",
        }

    availability_path = f"/v1/resources/{resource}/availability"
    browsed = await api.get(availability_path, params=WINDOW, headers=customer())
    assert browsed.status_code == 200, browsed.text
    held = await api.post(
        "/v1/holds",
        json={"resource_id": resource, "slot_ids": [slot], "quantity": 2},
        headers={**customer(), "Idempotency-Key": f"hold-{uuid.uuid4()}"},
    )
    assert held.status_code == 201, held.text
    assert held.headers["X-Request-Id"] == request_id
    hold = held.json()["id"]
    checkout = await api.post(f"/v1/holds/{hold}/checkout", headers=customer())
    assert checkout.status_code == 200, checkout.text
    async with httpx.AsyncClient(base_url=stack.fake_stripe, timeout=15) as browser:
        paid = await browser.post(f"/_fake/checkout/sessions/{checkout.json()['session_id']}/pay")
    assert paid.status_code == 200, paid.text

    async def booking_status() -> str:
        answer = await api.get(f"/v1/bookings/{hold}", headers=customer())
        return str(answer.json()["status"])

    await eventually(booking_status, lambda status: status == "confirmed", within=20)

    return Booking(request_id, trace_id, hold)


async def _spans_of(collector: TraceCollector, trace_id: str) -> list[Span]:
    # The spans: the booking's trace and what links to it, once all arrived.
    def complete(spans: list[Span]) -> bool:
        """Each process exports on its own schedule: wait for the last pieces."""
        names = [str(s) for s in spans]
        consumed = names.count(f"{AVAILABILITY}:CONSUMER:availability.invalidate")
        applied = call(WEBHOOKS, BOOKING, BOOKING_RPC + "ApplyPayment")
        return consumed >= 2 and all(name in names for name in applied)  # hold, booking

    async def collected() -> list[Span]:
        return with_links(list(collector.spans), trace_id)

    spans = await eventually(collected, complete, within=20)
    return spans


def _assert_one_trace_across_the_services(spans: list[Span], booking: Booking) -> None:
    trace_id, request_id, hold = booking.trace_id, booking.request_id, booking.hold
    in_trace = [s for s in spans if s.trace_id == trace_id]
    by_id = {s.span_id: s for s in spans}

    # Parent/child edges across the services.
    edges = cross_service_edges(spans)
    for method in ("CreateHold", "StartCheckout", "GetBooking"):
        assert call(GATEWAY, BOOKING, BOOKING_RPC + method) in edges, method
    assert call(GATEWAY, AVAILABILITY, AVAILABILITY_RPC + "GetAvailability") in edges
    assert call(WEBHOOKS, BOOKING, BOOKING_RPC + "ApplyPayment") in edges
    # The gateway's own server spans are children of the customer's page.
    gateway_servers = {s.name for s in in_trace if s.service == GATEWAY and s.kind == "SERVER"}
    assert gateway_servers >= {"POST /v1/holds", "GET /v1/bookings/{booking_id}"}

    # Across the outbox: the relay continues the hold's trace, and the
    # availability consumer links to the request that made the change.
    published = [s for s in in_trace if s.name == "outbox.publish availability"]
    assert published, "the relay's publishing of the hold is not in the booking's trace"
    assert all(by_id[s.parent_span_id].service == BOOKING for s in published)
    _, create_hold_name = call(GATEWAY, BOOKING, BOOKING_RPC + "CreateHold")
    create_hold = next(s for s in in_trace if str(s) == create_hold_name)
    invalidations = [s for s in spans if s.name == "availability.invalidate"]
    assert any(link.span_id == create_hold.span_id for s in invalidations for link in s.links), (
        "no cache invalidation links to the hold's CreateHold"
    )

    # Across Stripe: applying the payment links to the checkout's request.
    _, start_checkout_name = call(GATEWAY, BOOKING, BOOKING_RPC + "StartCheckout")
    start_checkout = next(s for s in in_trace if str(s) == start_checkout_name)
    applied = [s for s in spans if s.name == "stripe.event.apply"]
    assert any(link.span_id == start_checkout.span_id for s in applied for link in s.links)
    _, apply_payment_name = call(WEBHOOKS, BOOKING, BOOKING_RPC + "ApplyPayment")
    confirmed = next(s for s in spans if str(s) == apply_payment_name)
    assert confirmed.trace_id in {s.trace_id for s in applied}

    # The X-Request-Id on every span of the booking, in every service.
    assert {s.service for s in spans} == {GATEWAY, BOOKING, AVAILABILITY, WEBHOOKS}
    without = sorted({str(s) for s in spans if s.attributes.get(CORRELATION) != request_id})
    assert not without, f"spans without the booking's correlation id: {without}"
    assert create_hold.attributes["holdfast.hold_id"] == hold
    assert create_hold.attributes["holdfast.outcome"] == "placed"


def _assert_every_process_logged_it(stack: Stack, spans: list[Span], booking: Booking) -> None:
    trace_id, request_id = booking.trace_id, booking.request_id
    # Log lines: every process logged this booking under its ids.
    traces = {s.trace_id for s in spans}
    for service in SERVICES:
        mine = [
            line
            for line in log_lines(stack.logs[service])
            if line.get("correlation_id") == request_id
        ]
        assert mine, f"{service} logged nothing with the booking's correlation id"
        assert all(line["trace_id"] in traces and line["span_id"] for line in mine), service
        if service != "webhooks":  # the webhook's lines are in the linked traces
            assert any(line["trace_id"] == trace_id for line in mine), service


async def _assert_every_service_counted_it(stack: Stack, before: dict[str, Scrape]) -> None:
    # Metrics: each service counted the booking.
    after = await scrape_all(stack)

    def moved(service: str, name: str, **labels: str) -> float:
        return scraped(after[service], name, **labels) - scraped(before[service], name, **labels)

    assert moved("gateway", "holdfast_http_requests_total", route="/v1/holds", status="201") == 1
    assert moved("booking", "holdfast_holds_total", outcome="placed") == 1
    assert moved("booking", "holdfast_bookings_total", transition="confirmed") == 1
    assert moved("booking", "holdfast_hold_lock_wait_seconds_count") >= 2  # hold, confirm
    assert moved("booking", "holdfast_outbox_published_total") >= 2
    assert moved("availability", "holdfast_availability_invalidations_total") >= 2
    assert moved("availability", "holdfast_grpc_requests_total", code="OK") >= 1
    assert (
        moved(
            "webhooks",
            "holdfast_webhook_events_processed_total",
            type="checkout.session.completed",
        )
        == 1
    )
    requests = {
        "gateway": "holdfast_http_requests_total",
        "booking": "holdfast_grpc_requests_total",
        "availability": "holdfast_grpc_requests_total",
        "webhooks": "holdfast_webhook_ack_seconds_count",  # Stripe's deliveries
    }
    for service in SERVICES:
        assert moved(service, requests[service]) >= 1, service
        assert scraped(after[service], "holdfast_db_pool_max_connections") > 0, service


async def test_one_booking_is_one_trace_across_every_service(
    stack: Stack, collector: TraceCollector
) -> None:
    auth = await api_key(stack.database_url)
    async with httpx.AsyncClient(base_url=stack.gateway, headers=auth, timeout=15) as api:
        # The operator's inventory, under request ids of its own.
        resource, slot = await harbour_tour(api)
        before = await scrape_all(stack)
        booking = await _book_as_one_customer(api, stack, resource, slot)

    spans = await _spans_of(collector, booking.trace_id)
    _assert_one_trace_across_the_services(spans, booking)
    _assert_every_process_logged_it(stack, spans, booking)
    await _assert_every_service_counted_it(stack, before)
