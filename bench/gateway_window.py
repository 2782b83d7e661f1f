"""The measured stretch of `bench.gateway`: what the processes and the
services counted over it, and where the time goes (client, gateway,
service)."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import asyncpg

from bench.gateway_options import Options
from bench.gateway_users import RouteFigures
from bench.metrics import Metrics, Samples
from bench.processes import CpuWatch, cpu_seconds, machine_jiffies

ROUTES = ("GET availability", "POST holds", "DELETE holds")
# The gateway's route templates (its metrics' labels) and the gRPC methods
# each route calls, for "where the time goes".
GATEWAY_ROUTES = {
    "GET availability": ("GET", "/v1/resources/{resource_id}/availability"),
    "POST holds": ("POST", "/v1/holds"),
    "DELETE holds": ("DELETE", "/v1/holds/{hold_id}"),
}


GRPC_METHODS = {
    "GET availability": (
        "availability",
        "/holdfast.availability.v1.AvailabilityService/GetAvailability",
    ),
    "POST holds": ("booking", "/holdfast.booking.v1.BookingService/CreateHold"),
    "DELETE holds": ("booking", "/holdfast.booking.v1.BookingService/ReleaseHold"),
}


HTTP_LATENCY = "holdfast_http_request_duration_seconds"
GRPC_LATENCY = "holdfast_grpc_request_duration_seconds"


def mean_ms(delta: Samples, name: str, labels: dict[str, str]) -> tuple[int, float | None]:
    """Count and mean (ms) of a histogram's observations whose labels include `labels`."""
    count = total = 0.0
    for key, value in delta.items():
        if not key.startswith((f"{name}_count{{", f"{name}_sum{{")):
            continue
        found = dict(
            part.split("=", 1) for part in key[key.index("{") + 1 : -1].split(",") if "=" in part
        )
        if all(found.get(k) == v for k, v in labels.items()):
            if key.startswith(f"{name}_count"):
                count += value
            else:
                total += value
    return round(count), (total / count * 1000 if count else None)


def round_or_none(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def breakdown(
    client: dict[str, RouteFigures], services: dict[str, Samples]
) -> dict[str, dict[str, Any]]:
    """Per route, mean ms: as the client saw it, the gateway's own handling
    (its Edge middleware: from the request's first byte in the app to the
    answer, auth, rate limits and the downstream call included) and the
    downstream service's own handling of the gRPC call."""
    rows: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        method, path = GATEWAY_ROUTES[route]
        _, gateway_ms = mean_ms(
            services.get("gateway", {}), HTTP_LATENCY, {"method": method, "route": path}
        )
        service, rpc = GRPC_METHODS[route]
        _, service_ms = mean_ms(services.get(service, {}), GRPC_LATENCY, {"method": rpc})
        rows[route] = {
            "client_ms": round_or_none(client[route].mean_ms),
            "gateway_ms": round_or_none(gateway_ms),
            "service": f"{service} {rpc.rsplit('/', 1)[-1]}",
            "service_ms": round_or_none(service_ms),
        }
    return rows


async def postgres_backends(conn: asyncpg.Connection) -> list[int]:
    """The server processes serving this database (the services' pools), not ours."""
    rows = await conn.fetch(
        "SELECT pid FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    return [row["pid"] for row in rows]


class LoopLag:
    """How late the bench's own event loop wakes a 10 ms sleeper: when it is
    late, the bench itself adds to the latencies it reports."""

    INTERVAL = 0.01

    def __init__(self) -> None:
        self.samples: list[float] = []

    async def run(self, until: float) -> None:
        while time.perf_counter() < until:
            asked = time.perf_counter()
            await asyncio.sleep(self.INTERVAL)
            self.samples.append(max(0.0, time.perf_counter() - asked - self.INTERVAL))


class Window:
    """What the processes and the services counted over the measured stretch."""

    def __init__(self, options: Options) -> None:
        self.sources = {
            "gateway": Metrics(options.gateway_metrics),
            "booking": Metrics(options.booking_metrics),
            "availability": Metrics(options.availability_metrics),
        }
        self.options = options
        self.before: dict[str, Samples] = {}
        self.delta: dict[str, Samples] = {}
        self.cpu: CpuWatch | None = None
        self.cpu_share: dict[str, float | None] = {}
        self.client_cpu = 0.0
        self.machine: tuple[int, int] | None = None
        # The whole machine's busy CPUs over the window, in cores.
        self.machine_cores: float | None = None
        self.lag = LoopLag()
        self.errors: list[str] = []

    async def _read(self) -> dict[str, Samples]:
        samples: dict[str, Samples] = {}
        for name, source in self.sources.items():
            try:
                samples[name] = await source.read()
            except OSError as error:
                self.errors.append(f"{name} metrics: {error}")
                samples[name] = {}
        return samples

    async def open(self, conn: asyncpg.Connection) -> None:
        pids = dict(self.options.pids)
        backends = await postgres_backends(conn)
        if backends and cpu_seconds(backends) is not None:
            pids["postgres"] = backends
        self.cpu = CpuWatch(pids)
        self.before = await self._read()
        self.cpu.mark("start")
        self.client_cpu = time.process_time()
        self.machine = machine_jiffies()

    async def close(self, seconds: float) -> None:
        self.client_cpu = (time.process_time() - self.client_cpu) / seconds
        machine = machine_jiffies()
        if machine is not None and self.machine is not None and machine[1] > self.machine[1]:
            busy, total = (
                after - before for after, before in zip(machine, self.machine, strict=True)
            )
            self.machine_cores = busy / total * (os.cpu_count() or 1)
        assert self.cpu is not None
        self.cpu.mark("end")
        after = await self._read()
        self.delta = {
            name: Metrics.delta(self.before.get(name, {}), samples)
            for name, samples in after.items()
        }
        self.cpu_share = {"bench": round(self.client_cpu, 3), **self.cpu.between("start", "end")}
