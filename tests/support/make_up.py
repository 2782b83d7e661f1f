"""Running `python -m devtools up` (what `make up` runs) as a developer does,
and asking the stack it starts what it serves (tests/e2e/test_make_up.py)."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

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


def start(state_dir: Path, ports: Ports, output: Path) -> RunningStack:
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
            kill(process)
            pytest.fail(f"`python -m devtools up` did not come up:\n{output.read_text()}")
        time.sleep(0.2)
    redis = re.search(r"redis://127\.0\.0\.1:(\d+)/", output.read_text())
    assert redis, output.read_text()
    pid_file = state_dir / "postgres" / "postmaster.pid"
    return RunningStack(
        process, output, ports, int(redis.group(1)), int(pid_file.read_text().split()[0])
    )


def stop(stack: RunningStack, signum: signal.Signals) -> int:
    stack.process.send_signal(signum)
    try:
        return stack.process.wait(STOP_DEADLINE)
    except subprocess.TimeoutExpired:
        kill(stack.process)
        pytest.fail(
            f"`python -m devtools up` did not stop on {signum.name}:\n{stack.output.read_text()}"
        )


def kill(process: subprocess.Popen[bytes]) -> None:
    process.kill()
    process.wait()


def is_running(pid: int) -> bool:
    """Whether the process exists, not counting a zombie that waits for init to reap it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def gone_soon(pid: int) -> bool:
    # The postmaster deletes its pid file just before it exits, so give it a moment.
    deadline = time.monotonic() + 5
    while is_running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not is_running(pid)


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def eventually(probe: Callable[[], T], accept: Callable[[T], bool], within: float) -> T:
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


def health(channel: Any, service: str) -> int:
    request = health_pb2.HealthCheckRequest(service=service)
    status: int = health_pb2_grpc.HealthStub(channel).Check(request, timeout=10).status
    return status


def metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text: str = response.read().decode()
    return text


def demo_resources(channel: Any) -> dict[str, inventory_pb2.Resource]:
    inventory = inventory_pb2_grpc.InventoryServiceStub(channel)
    response = inventory.ListResources(
        inventory_pb2.ListResourcesRequest(), metadata=DEMO, timeout=10
    )
    return {resource.name: resource for resource in response.resources}


def slots(channel: Any, resource_id: str) -> list[inventory_pb2.Slot]:
    inventory = inventory_pb2_grpc.InventoryServiceStub(channel)
    response = inventory.ListSlots(
        inventory_pb2.ListSlotsRequest(resource_id=resource_id), metadata=DEMO, timeout=10
    )
    return list(response.slots)


def availability(channel: Any, resource_id: str) -> dict[str, tuple[int, int, int, int]]:
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


def pay(ports: Ports, session_id: str) -> str:
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


def booking(channel: Any, hold_id: str) -> booking_pb2.Hold:
    booking: booking_pb2.Hold = (
        booking_pb2_grpc.BookingServiceStub(channel)
        .GetBooking(booking_pb2.GetBookingRequest(booking_id=hold_id), metadata=DEMO, timeout=10)
        .booking
    )
    return booking


def events(channel: Any) -> list[tuple[str, str, int, str]]:
    """Every Stripe event the webhook service holds: (type, object, status, outcome)."""
    response = webhook_admin_pb2_grpc.WebhookAdminServiceStub(channel).ListEvents(
        webhook_admin_pb2.ListEventsRequest(), timeout=10
    )
    return [(e.type, e.object_id, e.status, e.outcome) for e in response.events]


def env_file(state_dir: Path) -> dict[str, str]:
    """up.env's `export NAME=value` lines, as a shell would read them."""
    values = {}
    for line in (state_dir / "up.env").read_text().splitlines():
        [assignment] = shlex.split(line.removeprefix("export "))
        name, _, value = assignment.partition("=")
        values[name] = value
    return values


def gateway(state_dir: Path) -> httpx.Client:
    """An HTTP client for the gateway up.env names, with the demo key up.env holds."""
    env = env_file(state_dir)
    return httpx.Client(
        base_url=env["HOLDFAST_GATEWAY_URL"],
        headers={"Authorization": f"Bearer {env['HOLDFAST_DEMO_API_KEY']}"},
        timeout=10,
        trust_env=False,  # loopback: no proxy, whatever the environment says
    )


def http_availability(gateway: httpx.Client, resource_id: str) -> dict[str, tuple[int, int]]:
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


def assert_nothing_left(stack: RunningStack, state_dir: Path) -> None:
    assert not (state_dir / "up.env").exists()
    assert not (state_dir / "postgres" / "postmaster.pid").exists()
    assert gone_soon(stack.postmaster_pid)
    assert not port_open(stack.redis_port)
    for port in stack.ports.all():
        assert not port_open(port), port
