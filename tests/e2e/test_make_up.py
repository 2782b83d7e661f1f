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

import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from holdfast.contracts.availability.v1 import availability_pb2, availability_pb2_grpc
from holdfast.contracts.booking.v1 import (
    booking_pb2,
    booking_pb2_grpc,
    inventory_pb2,
    inventory_pb2_grpc,
)
from holdfast.contracts.webhooks.v1 import webhook_admin_pb2, webhook_admin_pb2_grpc
from holdfast.platform.proto_time import time_range

pytestmark = pytest.mark.e2e

# A first start runs initdb; generous because CI machines are slow.
STARTUP_DEADLINE = 90.0
STOP_DEADLINE = 45.0
# How long a hold may take to reach the availability service (outbox, relay,
# stream, cache invalidation), or a payment to confirm its hold (the fake's
# webhook, the receiver, the processor, ApplyPayment); milliseconds, normally.
PROPAGATION_DEADLINE = 5.0
DEMO = (("x-tenant-id", "demo"),)
AVAILABILITY_SERVICE = "holdfast.availability.v1.AvailabilityService"
WEBHOOKS_SERVICE = "holdfast.webhooks.v1.WebhookAdminService"
CACHE_HEALTH = "holdfast.availability.cache"
# Settings that would change what `python -m devtools up` starts or where it looks.
UNSET = (
    "HOLDFAST_DATABASE_URL",
    "HOLDFAST_REDIS_URL",
    "HOLDFAST_STRIPE_API_KEY",
    "HOLDFAST_STRIPE_API_BASE",
    "HOLDFAST_STRIPE_WEBHOOK_SECRETS",
)

T = TypeVar("T")


@dataclass(frozen=True)
class Ports:
    """Free ports for everything `python -m devtools up` listens on, so that services
    others run on this machine (on the default ports) are never in the way."""

    booking: int
    availability: int
    webhooks: int
    webhooks_http: int
    fake_stripe: int
    gateway: int
    booking_metrics: int
    availability_metrics: int
    webhooks_metrics: int

    @classmethod
    def free(cls) -> Ports:
        # Held open together, so that no two are the same.
        with contextlib.ExitStack() as held:
            probes = [held.enter_context(socket.socket()) for _ in fields(cls)]
            for probe in probes:
                probe.bind(("127.0.0.1", 0))
            return cls(*(probe.getsockname()[1] for probe in probes))

    def args(self) -> list[str]:
        return [
            arg
            for field in fields(self)
            for arg in (f"--{field.name.replace('_', '-')}-port", str(getattr(self, field.name)))
        ]

    def all(self) -> list[int]:
        return [getattr(self, field.name) for field in fields(self)]


@dataclass
class RunningStack:
    process: subprocess.Popen[bytes]
    output: Path
    ports: Ports
    redis_port: int
    postmaster_pid: int


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


def _start(state_dir: Path, ports: Ports, output: Path) -> RunningStack:
    env = {name: value for name, value in os.environ.items() if name not in UNSET}
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "devtools", "up", "--state-dir", str(state_dir),
             *ports.args()],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + STARTUP_DEADLINE
    while "holdfast is up" not in output.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            _kill(process)
            pytest.fail(f"`python -m devtools up` did not come up:\n{output.read_text()}")
        time.sleep(0.2)
    redis = re.search(r"redis://127\.0\.0\.1:(\d+)/", output.read_text())
    assert redis, output.read_text()
    pid_file = state_dir / "postgres" / "postmaster.pid"
    return RunningStack(
        process, output, ports, int(redis.group(1)), int(pid_file.read_text().split()[0])
    )


def _stop(stack: RunningStack, signum: signal.Signals) -> int:
    stack.process.send_signal(signum)
    try:
        return stack.process.wait(STOP_DEADLINE)
    except subprocess.TimeoutExpired:
        _kill(stack.process)
        pytest.fail(
            f"`python -m devtools up` did not stop on {signum.name}:\n{stack.output.read_text()}"
        )


def _kill(process: subprocess.Popen[bytes]) -> None:
    process.kill()
    process.wait()


def _is_running(pid: int) -> bool:
    """Whether the process exists, not counting a zombie that waits for init to reap it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def _gone_soon(pid: int) -> bool:
    # The postmaster deletes its pid file just before it exits, so give it a moment.
    deadline = time.monotonic() + 5
    while _is_running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _is_running(pid)


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def _eventually(probe: Callable[[], T], accept: Callable[[T], bool], within: float) -> T:
    """Polls `probe` until `accept` holds for its result; fails with the last one.

    The deadline only bounds how long a broken stack is waited for; what is
    asserted is the value.
    """
    deadline = time.monotonic() + within
    while True:
        value = probe()
        if accept(value):
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"still {value!r} after {within} s")
        time.sleep(0.05)


def _health(channel: Any, service: str) -> int:
    request = health_pb2.HealthCheckRequest(service=service)
    status: int = health_pb2_grpc.HealthStub(channel).Check(request, timeout=10).status
    return status


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text: str = response.read().decode()
    return text


def _demo_resources(channel: Any) -> dict[str, inventory_pb2.Resource]:
    inventory = inventory_pb2_grpc.InventoryServiceStub(channel)
    response = inventory.ListResources(
        inventory_pb2.ListResourcesRequest(), metadata=DEMO, timeout=10
    )
    return {resource.name: resource for resource in response.resources}


def _slots(channel: Any, resource_id: str) -> list[inventory_pb2.Slot]:
    inventory = inventory_pb2_grpc.InventoryServiceStub(channel)
    response = inventory.ListSlots(
        inventory_pb2.ListSlotsRequest(resource_id=resource_id), metadata=DEMO, timeout=10
    )
    return list(response.slots)


def _availability(channel: Any, resource_id: str) -> dict[str, tuple[int, int, int, int]]:
    """Each slot's (capacity, available, held, booked), as the availability service answers."""
    now = datetime.now(UTC)
    response = availability_pb2_grpc.AvailabilityServiceStub(channel).GetAvailability(
        availability_pb2.GetAvailabilityRequest(
            resource_id=resource_id,
            # Every demo slot: they start from tomorrow, for 14 days at most.
            time_range=time_range(now - timedelta(days=1), now + timedelta(days=20)),
        ),
        metadata=DEMO,
        timeout=10,
    )
    return {
        slot.slot_id: (slot.capacity, slot.available, slot.held, slot.booked)
        for slot in response.availability.slots
    }


def _pay(ports: Ports, session_id: str) -> str:
    """`python -m devtools pay`: the customer pays on the fake Stripe; returns the payment
    intent."""
    paid = subprocess.run(
        [sys.executable, "-m", "devtools", "pay", session_id,
         "--fake-stripe", f"http://127.0.0.1:{ports.fake_stripe}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )  # fmt: skip
    assert paid.returncode == 0, paid.stdout + paid.stderr
    intent = re.search(r"^payment +(pi_\w+)$", paid.stdout, re.MULTILINE)
    assert intent, paid.stdout
    return intent.group(1)


def _booking(channel: Any, hold_id: str) -> booking_pb2.Hold:
    booking: booking_pb2.Hold = (
        booking_pb2_grpc.BookingServiceStub(channel)
        .GetBooking(booking_pb2.GetBookingRequest(booking_id=hold_id), metadata=DEMO, timeout=10)
        .booking
    )
    return booking


def _events(channel: Any) -> list[tuple[str, str, int, str]]:
    """Every Stripe event the webhook service holds: (type, object, status, outcome)."""
    response = webhook_admin_pb2_grpc.WebhookAdminServiceStub(channel).ListEvents(
        webhook_admin_pb2.ListEventsRequest(), timeout=10
    )
    return [(e.type, e.object_id, e.status, e.outcome) for e in response.events]


def _env_file(state_dir: Path) -> dict[str, str]:
    """up.env's `export NAME=value` lines, as a shell would read them."""
    values = {}
    for line in (state_dir / "up.env").read_text().splitlines():
        [assignment] = shlex.split(line.removeprefix("export "))
        name, _, value = assignment.partition("=")
        values[name] = value
    return values


def _gateway(state_dir: Path) -> httpx.Client:
    """An HTTP client for the gateway up.env names, with the demo key up.env holds."""
    env = _env_file(state_dir)
    return httpx.Client(
        base_url=env["HOLDFAST_GATEWAY_URL"],
        headers={"Authorization": f"Bearer {env['HOLDFAST_DEMO_API_KEY']}"},
        timeout=10,
        trust_env=False,  # loopback: no proxy, whatever the environment says
    )


def _http_availability(gateway: httpx.Client, resource_id: str) -> dict[str, tuple[int, int]]:
    """Each slot's (available, held), as the gateway answers."""
    now = datetime.now(UTC)
    answer = gateway.get(
        f"/v1/resources/{resource_id}/availability",
        params={
            "start": (now - timedelta(days=1)).isoformat(),
            "end": (now + timedelta(days=20)).isoformat(),
        },
    )
    assert answer.status_code == 200, answer.text
    return {slot["slot_id"]: (slot["available"], slot["held"]) for slot in answer.json()["slots"]}


def _assert_nothing_left(stack: RunningStack, state_dir: Path) -> None:
    assert not (state_dir / "up.env").exists()
    assert not (state_dir / "postgres" / "postmaster.pid").exists()
    assert _gone_soon(stack.postmaster_pid)
    assert not _port_open(stack.redis_port)
    for port in stack.ports.all():
        assert not _port_open(port), port


def test_up_seeds_the_demo_tenant_serves_holds_their_availability_and_payment_and_stops_cleanly(
    tmp_path: Path, state_dir: Path
) -> None:
    ports = Ports.free()

    stack = _start(state_dir, ports, tmp_path / "first-run.out")
    try:
        with (
            grpc.insecure_channel(f"127.0.0.1:{ports.booking}") as channel,
            grpc.insecure_channel(f"127.0.0.1:{ports.availability}") as availability,
            grpc.insecure_channel(f"127.0.0.1:{ports.webhooks}") as webhooks,
        ):
            resources = _demo_resources(channel)
            assert sorted(resources) == ["Harbour kayak tour", "Sea view room"]
            kayak = resources["Harbour kayak tour"]
            assert kayak.time_zone == "Europe/Lisbon"
            assert (kayak.price.currency_code, kayak.price.amount_minor) == ("EUR", 4500)
            tours = _slots(channel, kayak.resource_id)
            assert len(tours) == 14  # 09:00 and 14:00 for seven days
            nights = _slots(channel, resources["Sea view room"].resource_id)
            assert len(nights) == 14
            assert {slot.capacity for slot in nights} == {3}

            serving = health_pb2.HealthCheckResponse.SERVING
            assert _health(availability, AVAILABILITY_SERVICE) == serving
            # Its cache goes live once it has caught up with the change stream.
            _eventually(lambda: _health(availability, CACHE_HEALTH), lambda s: s == serving, 10.0)
            slot = tours[0]
            before = _availability(availability, kayak.resource_id)
            assert sorted(before) == sorted(s.slot_id for s in tours)
            assert before[slot.slot_id] == (8, 8, 0, 0)  # capacity, available, held, booked

            hold = (
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
            after = {s.slot_id: s for s in _slots(channel, kayak.resource_id)}[slot.slot_id]
            assert (after.held, after.available) == (2, 8 - 2)
            # The availability service learns of it through the outbox and the
            # stream, so it may lag a moment behind; then it must agree.
            seen = _eventually(
                lambda: _availability(availability, kayak.resource_id),
                lambda counts: counts[slot.slot_id] == (8, 8 - 2, 2, 0),
                PROPAGATION_DEADLINE,
            )
            assert {k: v for k, v in seen.items() if k != slot.slot_id} == {
                k: v for k, v in before.items() if k != slot.slot_id
            }

            # Paying: a checkout session on the fake Stripe, which `holdfast
            # pay` completes; the fake's signed webhook reaches the webhook
            # service, whose processor confirms the hold with the payment.
            assert _health(webhooks, WEBHOOKS_SERVICE) == serving
            checkout = (
                booking_pb2_grpc.BookingServiceStub(channel)
                .StartCheckout(
                    booking_pb2.StartCheckoutRequest(hold_id=hold.hold_id),
                    metadata=DEMO,
                    timeout=10,
                )
                .checkout
            )
            assert checkout.status == booking_pb2.CHECKOUT_STATUS_OPEN
            assert checkout.attempt == 1
            assert checkout.amount.amount_minor == 2 * 4500
            assert checkout.url == (
                f"http://127.0.0.1:{ports.fake_stripe}/pay/{checkout.session_id}"
            )
            payment_ref = _pay(ports, checkout.session_id)
            booked = _eventually(
                lambda: _booking(channel, hold.hold_id),
                lambda b: b.status != booking_pb2.HOLD_STATUS_HELD,
                PROPAGATION_DEADLINE,
            )
            assert booked.status == booking_pb2.HOLD_STATUS_CONFIRMED, booked
            assert booked.payment_ref == payment_ref
            _eventually(
                lambda: _availability(availability, kayak.resource_id)[slot.slot_id],
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
            _eventually(lambda: _events(webhooks), lambda events: events == [applied], 5.0)
        for metrics_port in (ports.booking_metrics, ports.availability_metrics):
            assert "holdfast_grpc_requests_total" in _metrics(metrics_port)
        assert (
            'holdfast_webhook_events_processed_total{status="APPLIED",'
            'type="checkout.session.completed"} 1.0'
        ) in _metrics(ports.webhooks_metrics)
        # The gateway: ready (it reaches booking, availability and Redis), and
        # the demo key up.env holds lists the demo tenant's resources and
        # holds and releases a place over HTTP.
        with _gateway(state_dir) as gateway:
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
            assert sorted(by_name) == ["Harbour kayak tour", "Sea view room"]
            room = by_name["Sea view room"]
            assert room["id"] == resources["Sea view room"].resource_id
            assert room["price"] == {"currency": "EUR", "amount_minor": 12000}
            night = nights[0].slot_id
            assert _http_availability(gateway, room["id"])[night] == (3, 0)
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
            _eventually(
                lambda: _http_availability(gateway, room["id"])[night],
                lambda counts: counts == (2, 1),
                PROPAGATION_DEADLINE,
            )
            released = gateway.delete(f"/v1/holds/{hold_json['id']}")
            assert released.status_code == 200, released.text
            assert released.json()["status"] == "released"
            _eventually(
                lambda: _http_availability(gateway, room["id"])[night],
                lambda counts: counts == (3, 0),
                PROPAGATION_DEADLINE,
            )
            # No key: refused, as problem+json.
            anonymous = gateway.get("/v1/resources", headers={"Authorization": ""})
            assert anonymous.status_code == 401
            assert anonymous.headers["content-type"] == "application/problem+json"
            assert anonymous.json()["reason"] == "UNAUTHENTICATED"
            gateway_metrics = gateway.get("/metrics").text
            held_twice = (
                'holdfast_http_requests_total{method="POST",route="/v1/holds",status="201"} 2.0'
            )
            assert held_twice in gateway_metrics
        assert f"http://localhost:{ports.gateway}/docs" in stack.output.read_text()
        # What `make bench` sources to find the running stack.
        env_file = (state_dir / "up.env").read_text()
        assert f"HOLDFAST_BOOKING_TARGET=127.0.0.1:{ports.booking}" in env_file
        assert f"HOLDFAST_AVAILABILITY_TARGET=127.0.0.1:{ports.availability}" in env_file
        assert f"HOLDFAST_WEBHOOKS_TARGET=127.0.0.1:{ports.webhooks}" in env_file
        webhook_url = f"http://127.0.0.1:{ports.webhooks_http}/stripe/webhook"
        assert f"HOLDFAST_WEBHOOKS_URL={webhook_url}" in env_file
        assert f"HOLDFAST_FAKE_STRIPE_URL=http://127.0.0.1:{ports.fake_stripe}" in env_file
        assert f"HOLDFAST_GATEWAY_URL=http://127.0.0.1:{ports.gateway}" in env_file
        demo_key = _env_file(state_dir)["HOLDFAST_DEMO_API_KEY"]
        assert re.fullmatch(r"hf_[a-z0-9]{12}_[A-Za-z0-9_-]{43}", demo_key)
        assert (state_dir / "up.env").stat().st_mode & 0o077 == 0  # it holds a key
    finally:
        code = _stop(stack, signal.SIGINT)
    assert code == 0, stack.output.read_text()
    assert "holdfast stopped" in stack.output.read_text()
    _assert_nothing_left(stack, state_dir)

    # A second `make up` on the same state: the data is still there, the demo
    # tenant is not seeded twice, and SIGTERM (docker stop) stops it as cleanly.
    again = _start(state_dir, ports, tmp_path / "second-run.out")
    try:
        with (
            grpc.insecure_channel(f"127.0.0.1:{ports.booking}") as channel,
            grpc.insecure_channel(f"127.0.0.1:{ports.availability}") as availability,
            grpc.insecure_channel(f"127.0.0.1:{ports.webhooks}") as webhooks,
        ):
            assert sorted(_demo_resources(channel)) == ["Harbour kayak tour", "Sea view room"]
            kept = {s.slot_id: s for s in _slots(channel, kayak.resource_id)}[slot.slot_id]
            assert (kept.held, kept.booked) == (0, 2)
            assert _booking(channel, hold.hold_id).payment_ref == payment_ref
            # A fresh Redis, so nothing cached: straight from the database.
            assert _availability(availability, kayak.resource_id)[slot.slot_id] == (8, 6, 0, 2)
            assert _events(webhooks) == [applied]
        # The demo key of the first run, kept in the state dir, still works.
        assert _env_file(state_dir)["HOLDFAST_DEMO_API_KEY"] == demo_key
        with _gateway(state_dir) as gateway:
            assert gateway.get("/readyz").status_code == 200
            listed = gateway.get("/v1/resources")
            assert listed.status_code == 200, listed.text
            assert len(listed.json()["items"]) == 2
    finally:
        code = _stop(again, signal.SIGTERM)
    assert code == 0, again.output.read_text()
    _assert_nothing_left(again, state_dir)
