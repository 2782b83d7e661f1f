"""HOLDFAST_<SERVICE>_WORKERS over real processes: two workers answer on the
one gRPC port (booking) and the one HTTP port (the webhook receiver), each
with its own /metrics naming its pid; a taken port is refused before any
worker starts, even one held with SO_REUSEPORT; SIGTERM to the parent stops
every worker."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from devtools.engines import free_port, stop_child, tail
from holdfast.platform.workers import METRICS_PORT_STRIDE
from tests.support.processes import service_env, start_service, wait_until_serving
from tests.support.stripe_events import SECRET, checkout_session, event, signed

pytestmark = pytest.mark.e2e

# Fresh connections, one at a time, until each worker has answered one: the
# kernel's hash puts about half on each once both listen (the second may
# still be starting when the first answers health checks).
CONNECTIONS = 200
BETWEEN_SECONDS = 0.05
EXIT_SECONDS = 30  # a bound on waiting, not a measured figure
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
RECEIVER_ACK = "holdfast_webhook_ack_seconds_count"


def _samples(metrics_port: int) -> dict[str, float]:
    """A worker's metrics; none while it is not serving them yet."""
    try:
        text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    except httpx.ConnectError:
        return {}
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def _worker_pid(samples: dict[str, float]) -> int:
    (key,) = [k for k in samples if k.startswith("holdfast_worker_info{")]
    return int(key.split("pid=")[1].split(",")[0])


def _count(samples: dict[str, float], name: str, label: str = "") -> float:
    return sum(v for k, v in samples.items() if k.startswith(name + "{") and label in k)


def _metrics_ports(base: int) -> tuple[int, int]:
    return base, base + METRICS_PORT_STRIDE


@asynccontextmanager
async def _running(
    module: str, env: dict[str, str], log: Path, grpc_port: int
) -> AsyncIterator[subprocess.Popen[bytes]]:
    process = start_service(module, env, log)
    try:
        await wait_until_serving(f"127.0.0.1:{grpc_port}", process, log)
        yield process
    finally:
        stop_child(process)


async def _until_both_answer(
    call: Callable[[], object], count: Callable[[int], float], metrics_base: int
) -> list[float]:
    """Fresh connections, one call each, until each worker counted one."""
    ports = _metrics_ports(metrics_base)
    for _ in range(CONNECTIONS):
        result = call()
        if hasattr(result, "__await__"):
            await result
        counts = [count(port) for port in ports]
        if all(counts):
            return counts
        await asyncio.sleep(BETWEEN_SECONDS)
    return [count(port) for port in ports]


async def test_two_booking_workers_answer_on_one_grpc_port(
    migrated_database: str, tmp_path: Path
) -> None:
    port, metrics = free_port(), free_port()
    env = service_env(
        migrated_database,
        booking_port=str(port),
        booking_metrics_port=str(metrics),
        booking_workers="2",
    )
    async with _running("services.booking", env, tmp_path / "booking.log", port) as process:

        async def check_on_a_new_connection() -> None:
            # Its own subchannel pool: a connection of its own.
            async with grpc.aio.insecure_channel(
                f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]
            ) as channel:
                reply = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest()
                )
                assert reply.status == health_pb2.HealthCheckResponse.SERVING

        counts = await _until_both_answer(
            check_on_a_new_connection,
            lambda p: _count(_samples(p), "holdfast_grpc_requests_total", HEALTH_CHECK),
            metrics,
        )
        pids = {_worker_pid(_samples(p)) for p in _metrics_ports(metrics)}
        assert all(counts), f"one worker answered every call: {counts}"
        assert len(pids) == 2
        assert process.pid not in pids


async def test_two_webhook_workers_answer_on_one_http_port(
    migrated_database: str, tmp_path: Path
) -> None:
    grpc_port, http_port, metrics = free_port(), free_port(), free_port()
    env = service_env(
        migrated_database,
        webhooks_port=str(grpc_port),
        webhooks_http_host="127.0.0.1",
        webhooks_http_port=str(http_port),
        webhooks_metrics_port=str(metrics),
        metrics_host="127.0.0.1",
        stripe_webhook_secrets=SECRET,
        stripe_api_key="sk_test_unused",
        booking_target=f"127.0.0.1:{free_port()}",
        webhooks_workers="2",
    )
    async with _running("services.webhooks", env, tmp_path / "webhooks.log", grpc_port):

        def deliver_on_a_new_connection() -> None:
            body, headers = signed(event("checkout.session.completed", checkout_session("h", "t")))
            # A client per delivery: a new connection each time.
            with httpx.Client() as client:
                answer = client.post(
                    f"http://127.0.0.1:{http_port}/stripe/webhook", content=body, headers=headers
                )
            assert answer.status_code == 200, answer.text

        counts = await _until_both_answer(
            deliver_on_a_new_connection,
            lambda p: _count(_samples(p), RECEIVER_ACK, "status=200"),
            metrics,
        )
        assert all(counts), f"one worker answered every delivery: {counts}"


async def _pid_when_serving(metrics_port: int) -> int:
    for _ in range(300):
        if samples := _samples(metrics_port):
            return _worker_pid(samples)
        await asyncio.sleep(0.1)
    raise AssertionError(f"no worker serves metrics on {metrics_port}")


@contextmanager
def _listening(port: int, *, reuse_port: bool) -> Iterator[socket.socket]:
    """Another process's socket on the port, as a foreign server would hold it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen()
    try:
        yield sock
    finally:
        sock.close()


@pytest.mark.parametrize(
    ("workers", "reuse_port"), [("1", False), ("1", True), ("2", False), ("2", True)]
)
def test_a_taken_port_is_refused(
    migrated_database: str, tmp_path: Path, workers: str, reuse_port: bool
) -> None:
    port = free_port()
    env = service_env(
        migrated_database,
        booking_port=str(port),
        booking_metrics_port="-1",
        booking_workers=workers,
    )
    log = tmp_path / "booking.log"
    with _listening(port, reuse_port=reuse_port):
        process = start_service("services.booking", env, log)
        try:
            code = process.wait(EXIT_SECONDS)
        finally:
            stop_child(process)
    assert code != 0, tail(log)
    if workers != "1":
        # Refused by the parent, naming the port and its setting.
        assert "HOLDFAST_BOOKING_PORT" in log.read_text()
        assert str(port) in log.read_text()
        assert "workers started" not in log.read_text()


async def test_sigterm_stops_every_worker(migrated_database: str, tmp_path: Path) -> None:
    port, metrics = free_port(), free_port()
    env = service_env(
        migrated_database,
        booking_port=str(port),
        booking_metrics_port=str(metrics),
        booking_workers="2",
    )
    log = tmp_path / "booking.log"
    async with _running("services.booking", env, log, port) as process:
        pids = [await _pid_when_serving(p) for p in _metrics_ports(metrics)]
        process.send_signal(signal.SIGTERM)
        assert process.wait(EXIT_SECONDS) == 0, tail(log)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert log.read_text().count('"stopped"') == 2
