"""`python -m devtools up` (what `make up` runs) on a machine with nothing configured.

The stack runs as a separate process exactly as a developer starts it: no
database, Redis or Stripe settings in the environment, so it must bring its
embedded engines, migrate, start the booking, availability and webhook
services, the fake Stripe and the HTTP gateway, and seed the demo tenant and
its API key; a client then holds through real gRPC, sees the hold in the
availability service, pays for it on the fake Stripe (`python -m devtools pay`) and sees
the webhook turn it into a booking; another holds and releases over HTTP with
the demo key from up.env; and Ctrl-C must leave nothing running.
"""

from __future__ import annotations

import re
import signal
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2

from holdfast.contracts.booking.v1 import booking_pb2, booking_pb2_grpc, inventory_pb2
from holdfast.contracts.webhooks.v1 import webhook_admin_pb2
from tests.support import make_up as up
from tests.support.make_up import (
    AVAILABILITY_SERVICE,
    CACHE_HEALTH,
    DEMO,
    PROPAGATION_DEADLINE,
    WEBHOOKS_SERVICE,
    Ports,
    RunningStack,
)

pytestmark = pytest.mark.e2e

# The slotted tour and room, and the windowed restaurant, hotel and bike rental.
DEMO_RESOURCES = [
    "Alfama guesthouse",
    "City bike rental",
    "Harbour bistro",
    "Harbour kayak tour",
    "Sea view room",
]


@pytest.fixture
def state_dir() -> Iterator[Path]:
    """`--state-dir`, in a folder of its own rather than under tmp_path.

    Run as root, the embedded Postgres runs as a system user of pgserver's,
    which pgserver lets through the folders above its data; but any pytest
    session that starts on the machine meanwhile makes pytest's root folder
    private again, and `pg_ctl stop` then cannot reach the data directory.
    """
    with tempfile.TemporaryDirectory(prefix="holdfast-e2e-", ignore_cleanup_errors=True) as path:
        yield Path(path) / "state"


@dataclass
class FirstRun:
    """What the first `make up` made, which the second must still have."""

    kayak: inventory_pb2.Resource
    slot: inventory_pb2.Slot
    hold: booking_pb2.Hold
    payment_ref: str
    applied: tuple[str, str, int, str]
    demo_key: str = ""


def _demo_inventory(
    channel: grpc.Channel,
) -> tuple[dict[str, inventory_pb2.Resource], list[inventory_pb2.Slot], list[inventory_pb2.Slot]]:
    """The seeded demo resources, the kayak's tours and the room's nights."""
    resources = up.demo_resources(channel)
    assert sorted(resources) == DEMO_RESOURCES
    kayak = resources["Harbour kayak tour"]
    assert kayak.time_zone == "Europe/Lisbon"
    assert (kayak.price.currency_code, kayak.price.amount_minor) == ("EUR", 4500)
    tours = up.slots(channel, kayak.resource_id)
    assert len(tours) == 14  # 09:00 and 14:00 for seven days
    nights = up.slots(channel, resources["Sea view room"].resource_id)
    assert len(nights) == 14
    assert {slot.capacity for slot in nights} == {3}
    return resources, tours, nights


def _hold_a_tour(
    channel: grpc.Channel,
    availability: grpc.Channel,
    kayak: inventory_pb2.Resource,
    tours: list[inventory_pb2.Slot],
) -> booking_pb2.Hold:
    """Holds two places on the first tour; the availability service shows it."""
    serving = health_pb2.HealthCheckResponse.SERVING
    assert up.health(availability, AVAILABILITY_SERVICE) == serving
    # Its cache goes live once it has caught up with the change stream.
    up.eventually(lambda: up.health(availability, CACHE_HEALTH), lambda s: s == serving, 10.0)
    slot = tours[0]
    before = up.availability(availability, kayak.resource_id)
    assert sorted(before) == sorted(s.slot_id for s in tours)
    assert before[slot.slot_id] == (8, 8, 0, 0)  # capacity, available, held, booked

    hold: booking_pb2.Hold = (
        booking_pb2_grpc.BookingServiceStub(channel)
        .CreateHold(
            booking_pb2.CreateHoldRequest(
                resource_id=kayak.resource_id,
                slot_ids=[slot.slot_id],
                quantity=2,
                customer_ref="e2e",
            ),
            metadata=DEMO,
            timeout=10,
        )
        .hold
    )
    assert hold.status == booking_pb2.HOLD_STATUS_HELD
    assert hold.total.amount_minor == 2 * 4500
    after = {s.slot_id: s for s in up.slots(channel, kayak.resource_id)}[slot.slot_id]
    assert (after.held, after.available) == (2, 8 - 2)
    # The availability service learns of it through the outbox and the
    # stream, so it may lag a moment behind; then it must agree.
    seen = up.eventually(
        lambda: up.availability(availability, kayak.resource_id),
        lambda counts: counts[slot.slot_id] == (8, 8 - 2, 2, 0),
        PROPAGATION_DEADLINE,
    )
    assert {k: v for k, v in seen.items() if k != slot.slot_id} == {
        k: v for k, v in before.items() if k != slot.slot_id
    }
    return hold


def _pay_for_it(
    ports: Ports,
    channels: tuple[grpc.Channel, grpc.Channel, grpc.Channel],
    kayak: inventory_pb2.Resource,
    slot: inventory_pb2.Slot,
    hold: booking_pb2.Hold,
) -> FirstRun:
    """A checkout session on the fake Stripe, which `holdfast pay` completes;
    the fake's signed webhook reaches the webhook service, whose processor
    confirms the hold with the payment."""
    channel, availability, webhooks = channels
    serving = health_pb2.HealthCheckResponse.SERVING
    assert up.health(webhooks, WEBHOOKS_SERVICE) == serving
    checkout = (
        booking_pb2_grpc.BookingServiceStub(channel)
        .StartCheckout(
            booking_pb2.StartCheckoutRequest(hold_id=hold.hold_id), metadata=DEMO, timeout=10
        )
        .checkout
    )
    assert checkout.status == booking_pb2.CHECKOUT_STATUS_OPEN
    assert checkout.attempt == 1
    assert checkout.amount.amount_minor == 2 * 4500
    assert checkout.url == (f"http://127.0.0.1:{ports.fake_stripe}/pay/{checkout.session_id}")
    payment_ref = up.pay(ports, checkout.session_id)
    booked = up.eventually(
        lambda: up.booking(channel, hold.hold_id),
        lambda b: b.status != booking_pb2.HOLD_STATUS_HELD,
        PROPAGATION_DEADLINE,
    )
    assert booked.status == booking_pb2.HOLD_STATUS_CONFIRMED, booked
    assert booked.payment_ref == payment_ref
    up.eventually(
        lambda: up.availability(availability, kayak.resource_id)[slot.slot_id],
        lambda counts: counts == (8, 8 - 2, 0, 2),
        PROPAGATION_DEADLINE,
    )
    # The processor records the event's outcome just after applying it.
    applied = (
        "checkout.session.completed",
        checkout.session_id,
        webhook_admin_pb2.EVENT_STATUS_APPLIED,
        "confirmed",
    )
    up.eventually(lambda: up.events(webhooks), lambda events: events == [applied], 5.0)
    return FirstRun(kayak, slot, hold, payment_ref, applied)


def _assert_the_metrics_count_it(ports: Ports) -> None:
    for metrics_port in (ports.booking_metrics, ports.availability_metrics):
        assert "holdfast_grpc_requests_total" in up.metrics(metrics_port)
    assert (
        'holdfast_webhook_events_processed_total{status="APPLIED",'
        'type="checkout.session.completed"} 1.0'
    ) in up.metrics(ports.webhooks_metrics)


def _gateway_is_ready_and_lists_the_demo(
    gateway: httpx.Client, resources: dict[str, inventory_pb2.Resource]
) -> dict[str, Any]:
    """The gateway is ready (it reaches booking, availability and Redis) and
    the demo key lists the demo tenant's resources; returns the room."""
    ready = gateway.get("/readyz")
    assert ready.status_code == 200, ready.text
    checks = ready.json()["checks"]
    assert ready.json()["status"] == "healthy", checks
    assert {name: c["status"] for name, c in checks.items()} == {
        "booking": "up",
        "availability": "up",
        "postgres": "up",
        "redis": "up",
        "stripe": "up",  # the fake Stripe `make up` runs
    }
    listed = gateway.get("/v1/resources")
    assert listed.status_code == 200, listed.text
    by_name = {r["name"]: r for r in listed.json()["items"]}
    assert sorted(by_name) == DEMO_RESOURCES
    room: dict[str, Any] = by_name["Sea view room"]
    assert room["id"] == resources["Sea view room"].resource_id
    assert room["price"] == {"currency": "EUR", "amount_minor": 12000}
    return room


def _hold_and_release_a_night_over_http(
    gateway: httpx.Client, room: dict[str, Any], night: str
) -> None:
    assert up.http_availability(gateway, room["id"])[night] == (3, 0)
    body = {"resource_id": room["id"], "slot_ids": [night], "quantity": 1}
    key = {"Idempotency-Key": "e2e-http-hold"}
    held = gateway.post("/v1/holds", json=body, headers=key)
    assert held.status_code == 201, held.text
    hold_json = held.json()
    assert (hold_json["status"], hold_json["quantity"]) == ("held", 1)
    assert hold_json["total"] == {"currency": "EUR", "amount_minor": 12000}
    # The same key and body: the same hold, not a second place.
    replayed = gateway.post("/v1/holds", json=body, headers=key)
    assert (replayed.status_code, replayed.json()["id"]) == (201, hold_json["id"])
    up.eventually(
        lambda: up.http_availability(gateway, room["id"])[night],
        lambda counts: counts == (2, 1),
        PROPAGATION_DEADLINE,
    )
    released = gateway.delete(f"/v1/holds/{hold_json['id']}")
    assert released.status_code == 200, released.text
    assert released.json()["status"] == "released"
    up.eventually(
        lambda: up.http_availability(gateway, room["id"])[night],
        lambda counts: counts == (3, 0),
        PROPAGATION_DEADLINE,
    )
    # No key: refused, as problem+json.
    anonymous = gateway.get("/v1/resources", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert anonymous.json()["reason"] == "UNAUTHENTICATED"
    gateway_metrics = gateway.get("/metrics").text
    held_twice = 'holdfast_http_requests_total{method="POST",route="/v1/holds",status="201"} 2.0'
    assert held_twice in gateway_metrics


def _up_env_finds_the_stack(stack: RunningStack, state_dir: Path, ports: Ports) -> str:
    """What `make bench` sources to find the running stack; returns the demo key."""
    assert f"http://localhost:{ports.gateway}/docs" in stack.output.read_text()
    env_file = (state_dir / "up.env").read_text()
    assert f"HOLDFAST_BOOKING_TARGET=127.0.0.1:{ports.booking}" in env_file
    assert f"HOLDFAST_AVAILABILITY_TARGET=127.0.0.1:{ports.availability}" in env_file
    assert f"HOLDFAST_WEBHOOKS_TARGET=127.0.0.1:{ports.webhooks}" in env_file
    webhook_url = f"http://127.0.0.1:{ports.webhooks_http}/stripe/webhook"
    assert f"HOLDFAST_WEBHOOKS_URL={webhook_url}" in env_file
    assert f"HOLDFAST_FAKE_STRIPE_URL=http://127.0.0.1:{ports.fake_stripe}" in env_file
    assert f"HOLDFAST_GATEWAY_URL=http://127.0.0.1:{ports.gateway}" in env_file
    demo_key = up.env_file(state_dir)["HOLDFAST_DEMO_API_KEY"]
    assert re.fullmatch(r"hf_[a-z0-9]{12}_[A-Za-z0-9_-]{43}", demo_key)
    assert (state_dir / "up.env").stat().st_mode & 0o077 == 0  # it holds a key
    return demo_key


def _first_run(stack: RunningStack, state_dir: Path, ports: Ports) -> FirstRun:
    with (
        grpc.insecure_channel(f"127.0.0.1:{ports.booking}") as channel,
        grpc.insecure_channel(f"127.0.0.1:{ports.availability}") as availability,
        grpc.insecure_channel(f"127.0.0.1:{ports.webhooks}") as webhooks,
    ):
        resources, tours, nights = _demo_inventory(channel)
        kayak = resources["Harbour kayak tour"]
        hold = _hold_a_tour(channel, availability, kayak, tours)
        first = _pay_for_it(ports, (channel, availability, webhooks), kayak, tours[0], hold)
    _assert_the_metrics_count_it(ports)
    # The gateway, with the demo key up.env holds: it lists the demo tenant's
    # resources and holds and releases a place over HTTP.
    with up.gateway(state_dir) as gateway:
        room = _gateway_is_ready_and_lists_the_demo(gateway, resources)
        _hold_and_release_a_night_over_http(gateway, room, nights[0].slot_id)
    first.demo_key = _up_env_finds_the_stack(stack, state_dir, ports)
    return first


def _second_run(state_dir: Path, ports: Ports, first: FirstRun) -> None:
    """The data is still there, the demo tenant is not seeded twice, and the
    first run's demo key still works."""
    with (
        grpc.insecure_channel(f"127.0.0.1:{ports.booking}") as channel,
        grpc.insecure_channel(f"127.0.0.1:{ports.availability}") as availability,
        grpc.insecure_channel(f"127.0.0.1:{ports.webhooks}") as webhooks,
    ):
        assert sorted(up.demo_resources(channel)) == DEMO_RESOURCES
        kept = {s.slot_id: s for s in up.slots(channel, first.kayak.resource_id)}[
            first.slot.slot_id
        ]
        assert (kept.held, kept.booked) == (0, 2)
        assert up.booking(channel, first.hold.hold_id).payment_ref == first.payment_ref
        # A fresh Redis, so nothing cached: straight from the database.
        counts = up.availability(availability, first.kayak.resource_id)
        assert counts[first.slot.slot_id] == (8, 6, 0, 2)
        assert up.events(webhooks) == [first.applied]
    # The demo key of the first run, kept in the state dir, still works.
    assert up.env_file(state_dir)["HOLDFAST_DEMO_API_KEY"] == first.demo_key
    with up.gateway(state_dir) as gateway:
        assert gateway.get("/readyz").status_code == 200
        listed = gateway.get("/v1/resources")
        assert listed.status_code == 200, listed.text
        assert len(listed.json()["items"]) == len(DEMO_RESOURCES)


def test_up_seeds_the_demo_tenant_serves_holds_their_availability_and_payment_and_stops_cleanly(
    tmp_path: Path, state_dir: Path
) -> None:
    ports = Ports.free()

    stack = up.start(state_dir, ports, tmp_path / "first-run.out")
    try:
        first = _first_run(stack, state_dir, ports)
    finally:
        code = up.stop(stack, signal.SIGINT)
    assert code == 0, stack.output.read_text()
    assert "holdfast stopped" in stack.output.read_text()
    up.assert_nothing_left(stack, state_dir)

    # A second `make up` on the same state: the data is still there, the demo
    # tenant is not seeded twice, and SIGTERM (docker stop) stops it as cleanly.
    again = up.start(state_dir, ports, tmp_path / "second-run.out")
    try:
        _second_run(state_dir, ports, first)
    finally:
        code = up.stop(again, signal.SIGTERM)
    assert code == 0, again.output.read_text()
    up.assert_nothing_left(again, state_dir)
