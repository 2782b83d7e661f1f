"""Each service serves Prometheus text on its metrics port, and it moves."""

from __future__ import annotations

import asyncio
import urllib.request

import httpx
from prometheus_client.parser import text_string_to_metric_families

from devtools.fakestripe.objects import new_id
from services.availability.server import AvailabilityApp
from services.booking.server import BookingApp
from services.webhooks.server import WebhooksApp
from tests.support.availability import AvailabilityClient, eventually
from tests.support.booking import BookingClient
from tests.support.stripe_events import event, signed


async def scrape(port: int) -> dict[str, float]:
    """Every sample on the page, keyed by name and labels."""

    def fetch() -> str:
        url = f"http://127.0.0.1:{port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(await asyncio.to_thread(fetch)):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


async def test_booking_and_availability_metrics_move(
    client: BookingClient,
    availability: AvailabilityClient,
    booking_app: BookingApp,
    availability_app: AvailabilityApp,
) -> None:
    resource, [slot] = await client.resource_with_slots(capacity=3)
    booking_before = await scrape(booking_app.metrics_server.port)
    availability_before = await scrape(availability_app.metrics_server.port)

    await availability.get(resource.resource_id)
    await client.hold(resource.resource_id, [slot.slot_id])
    await eventually(
        lambda: availability.slot_counts(resource.resource_id), lambda c: c[slot.slot_id].held == 1
    )

    booking = await scrape(booking_app.metrics_server.port)
    create_hold = (
        "holdfast_grpc_requests_total"
        "{code=OK,method=/holdfast.booking.v1.BookingService/CreateHold}"
    )
    assert booking[create_hold] == booking_before.get(create_hold, 0) + 1
    assert (
        booking["holdfast_outbox_published_total{}"]
        > booking_before["holdfast_outbox_published_total{}"]
    )
    assert "holdfast_outbox_backlog{}" in booking
    assert "holdfast_outbox_oldest_pending_seconds{}" in booking

    after = await scrape(availability_app.metrics_server.port)
    lag_count = "holdfast_availability_invalidation_lag_seconds_count{}"
    assert after[lag_count] > availability_before[lag_count]
    assert after["holdfast_availability_degraded{}"] == 0
    for name in (
        "holdfast_availability_cache_hits_total{level=local}",
        "holdfast_availability_cache_misses_total{reason=miss}",
        "holdfast_availability_cache_errors_total{}",
        "holdfast_grpc_request_duration_seconds_count"
        "{method=/holdfast.availability.v1.AvailabilityService/GetAvailability}",
    ):
        assert name in after, name


async def test_webhook_metrics_move(
    webhooks_app: WebhooksApp, stripe_http: httpx.AsyncClient
) -> None:
    kind = "customer.created"
    before = await scrape(webhooks_app.metrics_server.port)
    sent = event(kind, {"id": new_id("cus"), "object": "customer"})
    body, headers = signed(sent)
    assert (await stripe_http.post("/stripe/webhook", content=body, headers=headers)).is_success

    processed = f"holdfast_webhook_events_processed_total{{status=IGNORED,type={kind}}}"
    after = await eventually(
        lambda: scrape(webhooks_app.metrics_server.port),
        lambda m: m.get(processed, 0) > before.get(processed, 0),
    )
    received = f"holdfast_webhook_events_received_total{{type={kind}}}"
    assert after[received] == before.get(received, 0) + 1
    acks = "holdfast_webhook_ack_seconds_count{status=200}"
    assert after[acks] == before.get(acks, 0) + 1
    timed = f"holdfast_webhook_processing_seconds_count{{type={kind}}}"
    assert after[timed] > before.get(timed, 0)
    for name in (
        "holdfast_webhook_retries_total{}",
        "holdfast_webhook_dead_letters_total{}",
        "holdfast_webhook_refunds_total{}",
    ):
        assert name in after, name
