"""The HTTP gateway under many users at once, against a running stack.

    python -m bench.gateway --gateway-url URL --database-url DSN \
        [--users 1000] [--seconds 30] [--think-ms 500] [--pid gateway=PID ...]

Each simulated user loops, until the time is up: read its resource's
availability `--browse` times, take a hold of one place on one of its slots
(POST /v1/holds with an Idempotency-Key of its own), release it (DELETE
/v1/holds/{id}), with a think time between requests (uniform in 0.5x to 1.5x
--think-ms). Users start spread over --ramp-seconds; only requests started in
the --seconds after that count. A hold taken is always released, even after
the time is up.

Set-up: a fresh tenant `bench-xxxxxxxx` and one API key with every scope,
made in Postgres with holdfast.tenancy.keys.KeyRepository as `holdfast keys create`
does, with a per-key rate far above what the bench can send, so the per-key
limit never throttles it. The per-address limit counts each client address:
every user sends an X-Forwarded-For of its own (a 10.x.y.z address), which
the gateway's uvicorn believes from a loopback peer, as 1000 real users would
come from 1000 addresses (--one-address sends none: everything counts against
127.0.0.1). Resources and slots are made through the gateway's own admin
routes, far in the future.

Clients: one httpx.AsyncClient per --users-per-client users, with a
connection per user (a single client for everyone spends the bench's CPU on
its own pool bookkeeping, bench.webhooks found). The bench runs on uvloop.

Reported per route (GET availability, POST holds, DELETE holds) and overall:
p50/p95/p99/max latency as the client sees it, error rate, throughput, then
where the time goes: the gateway's own handling time per route and the
booking and availability services' own gRPC times (from their /metrics), the
availability cache's answers, and the CPU each process used (--pid; the
Postgres backends of the database are found by themselves). The design
target is p95 < 100 ms and errors < 0.1 %: reported as met or not, never
failed. Afterwards every hold must be released in Postgres, the slots' held
counts must agree, and the gateway's availability must come to show them.

The last line printed is one JSON object with every figure. Exit status 1
means a wrong answer (a 2xx whose body is not what was asked for) or the
state above disagreeing; 2 that the gateway or the database could not be
reached.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import secrets
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import uvloop

from bench.grpc_load import BASE_TIME
from bench.metrics import Metrics, Samples, cache_levels
from bench.processes import CpuWatch, cpu_seconds
from bench.stats import Latencies
from holdfast.tenancy import SCOPES
from holdfast.tenancy.keys import KeyRepository

OK = "OK"
WRONG = "WRONG"
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

P95_TARGET_MS = 100.0
ERROR_RATE_TARGET = 0.001
# Far above anything one machine can send: the per-key limit never bites.
BENCH_KEY_RATE = 1_000_000
HTTP_TIMEOUT_SECONDS = 10.0
SETUP_TIMEOUT_SECONDS = 30.0
HOLD_TTL_SECONDS = 300
SLOT_CAPACITY = 1000
# After the run: how long the gateway's availability may take to show every
# release (outbox, relay, stream, cache invalidation).
CONVERGE_SECONDS = 10.0
# An example of each kind of error, this long at most.
DETAIL_CHARS = 200


# --- what happened -----------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    route: str
    started: float  # perf_counter
    seconds: float
    outcome: str


@dataclass
class Record:
    calls: list[Call] = field(default_factory=list)
    examples: dict[str, str] = field(default_factory=dict)
    # Holds whose POST got no answer: taken or not, nobody knows.
    unknown_holds: int = 0
    holds_taken: int = 0
    holds_released: int = 0
    # Releases that failed: the hold may be held still (until its TTL).
    release_failures: int = 0

    def add(self, route: str, started: float, seconds: float, outcome: str, detail: str) -> None:
        self.calls.append(Call(route, started, seconds, outcome))
        if outcome != OK:
            self.examples.setdefault(f"{route}: {outcome}", detail[:DETAIL_CHARS])


@dataclass(frozen=True)
class RouteFigures:
    route: str
    requests: int
    ok: int
    errors: dict[str, int]
    per_s: float
    mean_ms: float
    latencies: Latencies

    @property
    def error_rate(self) -> float:
        return (self.requests - self.ok) / self.requests if self.requests else 0.0

    @property
    def target_met(self) -> bool:
        return (
            self.requests > 0
            and self.latencies.p95_ms < P95_TARGET_MS
            and self.error_rate < ERROR_RATE_TARGET
        )

    def figures(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "ok": self.ok,
            "errors": self.errors,
            "error_rate": round(self.error_rate, 6),
            "per_s": round(self.per_s, 1),
            "mean_ms": round(self.mean_ms, 2),
            **{k: round(v, 2) for k, v in asdict(self.latencies).items() if k != "count"},
            "target_met": self.target_met,
        }


def route_figures(route: str, calls: Sequence[Call], seconds: float) -> RouteFigures:
    outcomes = Counter(call.outcome for call in calls)
    return RouteFigures(
        route=route,
        requests=len(calls),
        ok=outcomes[OK],
        errors={k: v for k, v in sorted(outcomes.items()) if k != OK},
        per_s=len(calls) / seconds if seconds else 0.0,
        mean_ms=sum(call.seconds for call in calls) / len(calls) * 1000 if calls else math.nan,
        latencies=Latencies.of([call.seconds for call in calls]),
    )


# --- the users ---------------------------------------------------------------------


@dataclass(frozen=True)
class Resource:
    id: str
    slot_ids: tuple[str, ...]
    # The availability window every user of it asks: all its slots.
    window: dict[str, str]


@dataclass(frozen=True)
class Options:
    gateway_url: str
    database_url: str
    users: int
    users_per_client: int
    seconds: float
    ramp_seconds: float
    think_ms: float
    browse: int
    resources: int
    slots: int
    one_address: bool
    gateway_metrics: str | None
    booking_metrics: str | None
    availability_metrics: str | None
    pids: dict[str, list[int]]
    seed: int


def user_address(i: int) -> str:
    """A 10.x.y.z address of user i's own."""
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def problem_reason(response: httpx.Response) -> str:
    try:
        reason = response.json().get("reason")
    except (ValueError, AttributeError):
        reason = None
    return f"HTTP {response.status_code} {reason or '-'}"


class User:
    """One simulated person: browses, holds, releases, thinking in between."""

    def __init__(
        self,
        number: int,
        client: httpx.AsyncClient,
        resource: Resource,
        options: Options,
        record: Record,
    ) -> None:
        self.client = client
        self.resource = resource
        self.options = options
        self.record = record
        self.rng = random.Random(options.seed * 1_000_003 + number)
        self.headers = {} if options.one_address else {"X-Forwarded-For": user_address(number)}

    async def think(self) -> None:
        mean = self.options.think_ms / 1000
        await asyncio.sleep(self.rng.uniform(0.5 * mean, 1.5 * mean) if mean > 0 else 0)

    async def _send(
        self,
        route: str,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[float, float, httpx.Response | None, str]:
        """When it started, how long it took, and the answer if it was a 2xx
        (the caller judges and records it), else the failure (recorded here)."""
        started = time.perf_counter()
        try:
            response = await self.client.request(
                method, url, params=params, json=body, headers={**self.headers, **(headers or {})}
            )
        except httpx.HTTPError as error:
            seconds = time.perf_counter() - started
            failure = type(error).__name__
            self.record.add(route, started, seconds, failure, str(error) or repr(error))
            return started, seconds, None, failure
        seconds = time.perf_counter() - started
        if not response.is_success:
            failure = problem_reason(response)
            self.record.add(route, started, seconds, failure, response.text)
            return started, seconds, None, failure
        return started, seconds, response, OK

    async def browse(self) -> None:
        route = "GET availability"
        started, seconds, response, _ = await self._send(
            route,
            "GET",
            f"/v1/resources/{self.resource.id}/availability",
            params=self.resource.window,
        )
        if response is None:
            return
        answer = response.json()
        slots = answer.get("slots", [])
        right = (
            answer.get("resource_id") == self.resource.id
            and len(slots) == len(self.resource.slot_ids)
            and all(
                s["available"] + s["held"] + s["booked"] == s["capacity"] == SLOT_CAPACITY
                and s["held"] >= 0
                for s in slots
            )
        )
        self.record.add(route, started, seconds, OK if right else WRONG, response.text)

    async def hold(self) -> str | None:
        route = "POST holds"
        slot_id = self.rng.choice(self.resource.slot_ids)
        started, seconds, response, failure = await self._send(
            route,
            "POST",
            "/v1/holds",
            body={
                "resource_id": self.resource.id,
                "slot_ids": [slot_id],
                "quantity": 1,
                "customer_ref": "bench",
                "ttl_seconds": HOLD_TTL_SECONDS,
            },
            headers={"Idempotency-Key": f"bench-{uuid.uuid4().hex}"},
        )
        if response is None:
            if not failure.startswith("HTTP 4"):
                self.record.unknown_holds += 1  # no answer, or a 5xx: taken or not?
            return None
        hold = response.json()
        right = (
            response.status_code == 201
            and hold.get("status") == "held"
            and hold.get("resource_id") == self.resource.id
            and hold.get("quantity") == 1
            and [line["slot_id"] for line in hold.get("lines", [])] == [slot_id]
        )
        self.record.add(route, started, seconds, OK if right else WRONG, response.text)
        if not right:
            return None
        self.record.holds_taken += 1
        hold_id: str = hold["id"]
        return hold_id

    async def release(self, hold_id: str) -> None:
        route = "DELETE holds"
        started, seconds, response, _ = await self._send(route, "DELETE", f"/v1/holds/{hold_id}")
        if response is None:
            self.record.release_failures += 1
            return
        hold = response.json()
        right = hold.get("id") == hold_id and hold.get("status") == "released"
        self.record.add(route, started, seconds, OK if right else WRONG, response.text)
        if right:
            self.record.holds_released += 1
        else:
            self.record.release_failures += 1

    async def run(self, start_at: float, deadline: float) -> None:
        await asyncio.sleep(max(0.0, start_at - time.perf_counter()))
        while time.perf_counter() < deadline:
            for _ in range(self.options.browse):
                await self.browse()
                await self.think()
            hold_id = await self.hold()
            await self.think()
            if hold_id is not None:
                await self.release(hold_id)  # even past the deadline
            await self.think()


# --- set-up, through the gateway like any client --------------------------------------


async def make_tenant_and_key(pool: asyncpg.Pool, tenant: str) -> str:
    keys = KeyRepository(pool)
    await keys.create_tenant(tenant, "bench.gateway")
    made = await keys.create_key(
        tenant, SCOPES, name="bench.gateway", rate_per_second=BENCH_KEY_RATE
    )
    return made.token


async def make_resources(client: httpx.AsyncClient, options: Options) -> list[Resource]:
    made = []
    for n in range(options.resources):
        # A day apart per resource, so no two share a slot time (not that it matters).
        first = BASE_TIME + timedelta(days=n)
        answer = await client.post(
            "/v1/resources",
            json={
                "name": f"bench {n}",
                "time_zone": "UTC",
                "price": {"currency": "EUR", "amount_minor": 1000},
                "default_capacity": SLOT_CAPACITY,
            },
        )
        answer.raise_for_status()
        resource_id = answer.json()["id"]
        slots = await client.post(
            f"/v1/resources/{resource_id}/slots",
            json={
                "slots": [
                    {
                        "start": (first + timedelta(hours=h)).isoformat(),
                        "end": (first + timedelta(hours=h + 1)).isoformat(),
                    }
                    for h in range(options.slots)
                ]
            },
        )
        slots.raise_for_status()
        window = {
            "start": first.isoformat(),
            "end": (first + timedelta(hours=options.slots)).isoformat(),
        }
        made.append(Resource(resource_id, tuple(s["id"] for s in slots.json()["items"]), window))
    return made


def new_client(options: Options, key: str, connections: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=options.gateway_url,
        headers={"Authorization": f"Bearer {key}"},
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        timeout=HTTP_TIMEOUT_SECONDS,
        trust_env=False,  # a local gateway: no proxy, whatever the environment says
    )


# --- where the time goes ------------------------------------------------------------


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


def _round(value: float | None, digits: int = 2) -> float | None:
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
            "client_ms": _round(client[route].mean_ms),
            "gateway_ms": _round(gateway_ms),
            "service": f"{service} {rpc.rsplit('/', 1)[-1]}",
            "service_ms": _round(service_ms),
        }
    return rows


async def postgres_backends(conn: asyncpg.Connection) -> list[int]:
    """The server processes serving this database (the services' pools), not ours."""
    rows = await conn.fetch(
        "SELECT pid FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    return [row["pid"] for row in rows]


def machine_jiffies() -> tuple[int, int] | None:
    """(busy, all) CPU time of the whole machine so far, in clock ticks (/proc/stat)."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle, iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


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


# --- after the run: is everything released, and does everyone agree? ------------------


@dataclass
class Consistency:
    holds: dict[str, int]
    slots_held: int
    slots_booked: int
    availability_held: int | None
    problems: list[str]

    def figures(self) -> dict[str, Any]:
        return asdict(self)


async def gateway_held(client: httpx.AsyncClient, resources: Sequence[Resource]) -> int:
    total = 0
    for resource in resources:
        answer = await client.get(
            f"/v1/resources/{resource.id}/availability", params=resource.window
        )
        answer.raise_for_status()
        total += sum(slot["held"] for slot in answer.json()["slots"])
    return total


async def check_state(
    conn: asyncpg.Connection,
    client: httpx.AsyncClient,
    tenant: str,
    resources: Sequence[Resource],
    record: Record,
) -> Consistency:
    rows = await conn.fetch(
        "SELECT status, count(*) AS n FROM holds WHERE tenant_id = $1 GROUP BY status", tenant
    )
    holds = {row["status"]: row["n"] for row in rows}
    sums = await conn.fetchrow(
        "SELECT coalesce(sum(held), 0) AS held, coalesce(sum(booked), 0) AS booked"
        " FROM slots WHERE tenant_id = $1",
        tenant,
    )
    live = await conn.fetchval(
        "SELECT coalesce(sum(h.quantity), 0) FROM holds h"
        " WHERE h.tenant_id = $1 AND h.status = 'HELD'",
        tenant,
    )
    problems = []
    still_held = holds.get("HELD", 0)
    if still_held > record.unknown_holds + record.release_failures:
        problems.append(
            f"{still_held} holds still HELD in Postgres, but only {record.unknown_holds}"
            f" hold requests went unanswered and {record.release_failures} releases failed"
        )
    made = sum(holds.values())
    if not record.holds_taken <= made <= record.holds_taken + record.unknown_holds:
        problems.append(
            f"Postgres has {made} holds; the bench was given {record.holds_taken}"
            f" (and {record.unknown_holds} requests went unanswered)"
        )
    released = holds.get("RELEASED", 0)
    if not record.holds_released <= released <= record.holds_released + record.release_failures:
        problems.append(
            f"{released} holds RELEASED in Postgres; {record.holds_released} releases answered,"
            f" {record.release_failures} failed"
        )
    if sums["held"] != live:
        problems.append(f"the slots count {sums['held']} held, the live holds {live}")
    if sums["booked"] != 0:
        problems.append(f"the slots count {sums['booked']} booked; the bench books nothing")
    # The gateway's availability (the availability service's caches) must
    # come to agree with Postgres.
    seen: int | None = None
    deadline = time.monotonic() + CONVERGE_SECONDS
    while True:
        try:
            seen = await gateway_held(client, resources)
        except httpx.HTTPError as error:
            problems.append(f"reading availability after the run: {error}")
            break
        if seen == sums["held"]:
            break
        if time.monotonic() > deadline:
            problems.append(
                f"after {CONVERGE_SECONDS:.0f} s the gateway still shows {seen} held,"
                f" Postgres {sums['held']}"
            )
            break
        await asyncio.sleep(0.2)
    return Consistency(holds, sums["held"], sums["booked"], seen, problems)


# --- the run ------------------------------------------------------------------------


@dataclass
class Results:
    tenant: str
    clients: int
    measured_seconds: float
    started_in_ramp: int
    routes: dict[str, RouteFigures]
    overall: RouteFigures
    window: Window
    consistency: Consistency
    record: Record
    postgres: str


async def wait_ready(client: httpx.AsyncClient) -> str | None:
    """None once GET /readyz answers 200, else why not."""
    deadline = time.monotonic() + SETUP_TIMEOUT_SECONDS
    while True:
        try:
            answer = await client.get("/readyz")
            if answer.status_code == 200:
                return None
            why = f"/readyz answers {answer.status_code}: {answer.text[:200]}"
        except httpx.HTTPError as error:
            why = f"{type(error).__name__}: {error}"
        if time.monotonic() > deadline:
            return why
        await asyncio.sleep(0.5)


async def measure(options: Options) -> Results | int:
    tenant = f"bench-{secrets.token_hex(4)}"
    try:
        pool = await asyncpg.create_pool(options.database_url, min_size=1, max_size=2, timeout=10)
    except (OSError, asyncpg.PostgresError) as error:
        print(f"cannot reach the database: {error}", file=sys.stderr)
        return 2
    assert pool is not None
    clients: list[httpx.AsyncClient] = []
    try:
        key = await make_tenant_and_key(pool, tenant)
        setup = new_client(options, key, 4)
        clients.append(setup)
        why = await wait_ready(setup)
        if why is not None:
            print(f"the gateway at {options.gateway_url} is not ready: {why}", file=sys.stderr)
            return 2
        resources = await make_resources(setup, options)
        record = Record()
        per_client = options.users_per_client
        for first in range(0, options.users, per_client):
            clients.append(new_client(options, key, min(per_client, options.users - first)))
        users = [
            User(i, clients[1 + i // per_client], resources[i % len(resources)], options, record)
            for i in range(options.users)
        ]
        window = Window(options)
        begin = time.perf_counter() + 0.1
        measured_from = begin + options.ramp_seconds
        deadline = measured_from + options.seconds
        async with pool.acquire() as conn:

            async def observe() -> None:
                await asyncio.sleep(max(0.0, measured_from - time.perf_counter()))
                await window.open(conn)
                await window.lag.run(deadline)
                await window.close(options.seconds)

            observer = asyncio.create_task(observe())
            await asyncio.gather(
                *(
                    user.run(begin + options.ramp_seconds * i / options.users, deadline)
                    for i, user in enumerate(users)
                )
            )
            await observer
            consistency = await check_state(conn, setup, tenant, resources, record)
            postgres: str = await conn.fetchval("SHOW server_version")
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))
        await pool.close()
    counted = [c for c in record.calls if measured_from <= c.started < deadline]
    routes = {
        route: route_figures(route, [c for c in counted if c.route == route], options.seconds)
        for route in ROUTES
    }
    return Results(
        tenant=tenant,
        clients=len(clients) - 1,
        measured_seconds=options.seconds,
        started_in_ramp=sum(1 for c in record.calls if c.started < measured_from),
        routes=routes,
        overall=route_figures("all", counted, options.seconds),
        window=window,
        consistency=consistency,
        record=record,
        postgres=postgres,
    )


# --- output -------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "       -" if value is None or math.isnan(value) else f"{value:8.1f}"


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report(options: Options, results: Results) -> dict[str, Any]:
    wrong = sum(1 for call in results.record.calls if call.outcome == WRONG)
    print(
        f"holdfast gateway benchmark  gateway={options.gateway_url}  tenant={results.tenant}\n"
        f"  {os.cpu_count()} CPUs (shared by the bench and the whole stack), Python"
        f" {platform.python_version()}, PostgreSQL {results.postgres}\n"
        f"  {options.users} users over {results.clients} httpx clients ({options.users_per_client}"
        f" users each, a connection per user); think {options.think_ms:g} ms (0.5x-1.5x);"
        f" each cycle {options.browse} availability reads, a hold, its release;"
        f" {options.resources} resources x {options.slots} slots\n"
        f"  rate limits: the bench key allows {BENCH_KEY_RATE}/s, so the per-key limit does not"
        " throttle; "
        + (
            "every request comes from 127.0.0.1 (--one-address): the per-address limit applies"
            " to all users together"
            if options.one_address
            else "each user sends an X-Forwarded-For of its own, so the per-address limit"
            " applies per user, as for real users"
        )
        + f"\n  measured {options.seconds:g} s after a {options.ramp_seconds:g} s ramp"
        f" ({results.started_in_ramp} requests in the ramp not counted)\n"
    )
    header = (
        f"  {'route':<18}{'requests':>9}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
        f"{'max ms':>9}{'errors':>8}{'error %':>9}   p95 < {P95_TARGET_MS:.0f} ms,"
        f" errors < {ERROR_RATE_TARGET:.1%}"
    )
    print(header)
    for figures in [*results.routes.values(), results.overall]:
        lat = figures.latencies
        print(
            f"  {figures.route:<18}{figures.requests:9d}{figures.per_s:8.0f}{_ms(lat.p50_ms)}"
            f"{_ms(lat.p95_ms)}{_ms(lat.p99_ms)}{_ms(lat.max_ms)}"
            f"{figures.requests - figures.ok:8d}{figures.error_rate:9.3%}"
            f"   {_met(figures.target_met)}"
        )
        for name, count in figures.errors.items():
            print(f"      {name}: {count}")
    holds_per_s = results.routes["POST holds"].ok / results.measured_seconds
    print(f"  holds taken {holds_per_s:.0f}/s; wrong answers {wrong}\n")
    if results.record.examples:
        print("  an example of each error:")
        for name, detail in sorted(results.record.examples.items()):
            print(f"    {name}: {detail}")
        print()

    window = results.window
    rows = breakdown(results.routes, window.delta)
    print("  where the time goes (mean ms per request in the window):")
    print(f"  {'route':<18}{'client':>9}{'gateway':>9}{'service':>9}   (service call)")
    for route, row in rows.items():
        print(
            f"  {route:<18}{_ms(row['client_ms'])} {_ms(row['gateway_ms'])}"
            f" {_ms(row['service_ms'])}   {row['service']}"
        )
    print(
        "    client: as the bench saw it; gateway: its own handling (auth, rate limits, the"
        " call, the JSON); service: the gRPC service's own handling"
    )
    cpu = ", ".join(
        f"{name} {share:.0%}" if share is not None else f"{name} -"
        for name, share in window.cpu_share.items()
    )
    print(f"  CPU, share of one core: {cpu}")
    if window.machine_cores is not None:
        listed = sum(share for share in window.cpu_share.values() if share is not None)
        print(
            f"  the machine: {window.machine_cores:.2f} of {os.cpu_count()} cores busy; the"
            f" processes above {listed:.2f}, everything else {window.machine_cores - listed:.2f}"
        )
    lag = Latencies.of(window.lag.samples)
    print(
        f"  the bench's event loop woke a 10 ms sleeper late by p50 {lag.p50_ms:.1f}"
        f"  p99 {lag.p99_ms:.1f}  max {lag.max_ms:.1f} ms"
    )
    levels = cache_levels(window.delta.get("availability", {}))
    if levels:
        print(
            "  availability service answers: "
            + ", ".join(f"{name} {count}" for name, count in levels.items())
        )
    for error in window.errors:
        print(f"  (could not read {error})")

    state = results.consistency
    print(
        f"\n  after the run: holds in Postgres {dict(sorted(state.holds.items()))}; slots held"
        f" {state.slots_held}, booked {state.slots_booked}; the gateway shows"
        f" {state.availability_held} held; unanswered hold requests"
        f" {results.record.unknown_holds}, failed releases {results.record.release_failures}"
    )
    for problem in state.problems:
        print(f"  PROBLEM: {problem}")
    print(
        f"  target (p95 < {P95_TARGET_MS:.0f} ms and errors < {ERROR_RATE_TARGET:.1%} on every"
        f" route): {_met(all(f.target_met for f in results.routes.values()))}\n"
    )
    return {
        "bench": "gateway",
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "gateway": options.gateway_url,
        "tenant": results.tenant,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "postgres": results.postgres,
        },
        "options": asdict(options) | {"database_url": None},
        "bench_key_rate_per_second": BENCH_KEY_RATE,
        "clients": results.clients,
        "routes": {route: f.figures() for route, f in results.routes.items()},
        "overall": results.overall.figures(),
        "holds_per_s": round(holds_per_s, 1),
        "wrong_answers": wrong,
        "started_in_ramp": results.started_in_ramp,
        "breakdown_ms": rows,
        "cpu_share": window.cpu_share,
        "machine_busy_cores": _round(window.machine_cores, 3),
        "bench_loop_lag_ms": {
            k: round(v, 2) for k, v in asdict(Latencies.of(window.lag.samples)).items()
        },
        "availability_answers": levels,
        "after": state.figures()
        | {
            "unknown_holds": results.record.unknown_holds,
            "release_failures": results.record.release_failures,
        },
        "target": {"p95_ms": P95_TARGET_MS, "error_rate": ERROR_RATE_TARGET},
        "target_met": all(f.target_met for f in results.routes.values()),
    }


async def run(options: Options) -> int:
    results = await measure(options)
    if isinstance(results, int):
        return results
    figures = report(options, results)
    print(json.dumps(figures, separators=(",", ":")))
    wrong = figures["wrong_answers"]
    if wrong or results.consistency.problems:
        print(
            f"wrong answers: {wrong}; problems after the run: {len(results.consistency.problems)}",
            file=sys.stderr,
        )
        return 1
    return 0


def _pid(text: str) -> tuple[str, list[int]]:
    label, _, pids = text.partition("=")
    try:
        return label, [int(p) for p in pids.split(",") if p]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not LABEL=PID[,PID...]") from None


def parse(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.gateway", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    env = os.environ.get
    parser.add_argument(
        "--gateway-url",
        default=env("HOLDFAST_GATEWAY_URL", "http://127.0.0.1:8080"),
        help="default: $HOLDFAST_GATEWAY_URL",
    )
    parser.add_argument(
        "--database-url",
        default=env("HOLDFAST_DATABASE_URL"),
        help="the gateway's Postgres, for the bench's tenant and key (default:"
        " $HOLDFAST_DATABASE_URL)",
    )
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument(
        "--users-per-client", type=int, default=10, help="users sharing one httpx client"
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="measured time")
    parser.add_argument(
        "--ramp-seconds", type=float, default=5.0, help="users start spread over this, uncounted"
    )
    parser.add_argument(
        "--think-ms", type=float, default=500.0, help="mean pause after each request (0: none)"
    )
    parser.add_argument("--browse", type=int, default=3, help="availability reads before each hold")
    parser.add_argument("--resources", type=int, default=20)
    parser.add_argument("--slots", type=int, default=24, help="slots per resource")
    parser.add_argument(
        "--one-address",
        action="store_true",
        help="send no X-Forwarded-For: every user counts against 127.0.0.1's rate limit",
    )
    parser.add_argument(
        "--gateway-metrics", help="default: the gateway's /metrics (--gateway-url + /metrics)"
    )
    parser.add_argument(
        "--booking-metrics",
        default=env("HOLDFAST_BOOKING_METRICS_URL"),
        help="the booking service's /metrics (default: $HOLDFAST_BOOKING_METRICS_URL)",
    )
    parser.add_argument(
        "--availability-metrics",
        default=env("HOLDFAST_AVAILABILITY_METRICS_URL"),
        help="the availability service's /metrics (default: $HOLDFAST_AVAILABILITY_METRICS_URL)",
    )
    parser.add_argument(
        "--pid",
        type=_pid,
        action="append",
        default=[],
        metavar="LABEL=PID[,PID]",
        help="report this process's CPU, e.g. gateway=1234; repeatable",
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("--database-url or HOLDFAST_DATABASE_URL is required")
    if args.users < 1 or args.users_per_client < 1 or args.resources < 1 or args.slots < 1:
        parser.error("--users, --users-per-client, --resources and --slots must be at least 1")
    if args.seconds <= 0 or args.ramp_seconds < 0 or args.think_ms < 0 or args.browse < 0:
        parser.error(
            "--seconds must be positive; --ramp-seconds, --think-ms, --browse not negative"
        )
    gateway_url = args.gateway_url.rstrip("/")
    return Options(
        gateway_url=gateway_url,
        database_url=args.database_url,
        users=args.users,
        users_per_client=args.users_per_client,
        seconds=args.seconds,
        ramp_seconds=args.ramp_seconds,
        think_ms=args.think_ms,
        browse=args.browse,
        resources=args.resources,
        slots=args.slots,
        one_address=args.one_address,
        gateway_metrics=args.gateway_metrics or f"{gateway_url}/metrics",
        booking_metrics=args.booking_metrics,
        availability_metrics=args.availability_metrics,
        pids=dict(args.pid),
        seed=args.seed,
    )


def main(argv: Sequence[str] | None = None) -> int:
    return uvloop.run(run(parse(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
