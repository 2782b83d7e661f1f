"""`holdfast up` (what `make up` runs) on a machine with nothing configured.

The stack runs as a separate process exactly as a developer starts it: no
database or Redis URL in the environment, so it must bring its embedded
engines, migrate, start the booking service and seed the demo tenant; a client
then books through real gRPC, and Ctrl-C must leave nothing running.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from holdfast.booking.v1 import booking_pb2, booking_pb2_grpc, inventory_pb2, inventory_pb2_grpc
from holdfast.engines import free_port

pytestmark = pytest.mark.e2e

# A first start runs initdb; generous because CI machines are slow.
STARTUP_DEADLINE = 90.0
STOP_DEADLINE = 45.0
DEMO = (("x-tenant-id", "demo"),)


@dataclass
class RunningStack:
    process: subprocess.Popen[bytes]
    output: Path
    booking_port: int
    redis_port: int
    postmaster_pid: int


def _start(state_dir: Path, booking_port: int, output: Path) -> RunningStack:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("HOLDFAST_DATABASE_URL", "HOLDFAST_REDIS_URL")
    }
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "holdfast.cli", "up", "--state-dir", str(state_dir),
             "--booking-port", str(booking_port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + STARTUP_DEADLINE
    while "holdfast is up" not in output.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            _kill(process)
            pytest.fail(f"`holdfast up` did not come up:\n{output.read_text()}")
        time.sleep(0.2)
    redis = re.search(r"redis://127\.0\.0\.1:(\d+)/", output.read_text())
    assert redis, output.read_text()
    pid_file = state_dir / "postgres" / "postmaster.pid"
    return RunningStack(
        process, output, booking_port, int(redis.group(1)), int(pid_file.read_text().split()[0])
    )


def _stop(stack: RunningStack, signum: signal.Signals) -> int:
    stack.process.send_signal(signum)
    try:
        return stack.process.wait(STOP_DEADLINE)
    except subprocess.TimeoutExpired:
        _kill(stack.process)
        pytest.fail(f"`holdfast up` did not stop on {signum.name}:\n{stack.output.read_text()}")


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


def _assert_nothing_left(stack: RunningStack, state_dir: Path) -> None:
    assert not (state_dir / "up.env").exists()
    assert not (state_dir / "postgres" / "postmaster.pid").exists()
    assert _gone_soon(stack.postmaster_pid)
    assert not _port_open(stack.redis_port)
    assert not _port_open(stack.booking_port)


def test_up_seeds_the_demo_tenant_serves_holds_and_stops_cleanly(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    port = free_port()

    stack = _start(state_dir, port, tmp_path / "first-run.out")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
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

            slot = tours[0]
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
        # What `make bench` sources to find the running stack.
        assert f"HOLDFAST_BOOKING_TARGET=127.0.0.1:{port}" in (state_dir / "up.env").read_text()
    finally:
        code = _stop(stack, signal.SIGINT)
    assert code == 0, stack.output.read_text()
    assert "holdfast stopped" in stack.output.read_text()
    _assert_nothing_left(stack, state_dir)

    # A second `make up` on the same state: the data is still there, the demo
    # tenant is not seeded twice, and SIGTERM (docker stop) stops it as cleanly.
    again = _start(state_dir, port, tmp_path / "second-run.out")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            assert sorted(_demo_resources(channel)) == ["Harbour kayak tour", "Sea view room"]
            kept = {s.slot_id: s for s in _slots(channel, kayak.resource_id)}[slot.slot_id]
            assert kept.held == 2
    finally:
        code = _stop(again, signal.SIGTERM)
    assert code == 0, again.output.read_text()
    _assert_nothing_left(again, state_dir)
