"""The simulated users of `bench.gateway` and what they record: each browses
a resource's availability, holds a slot and releases it, thinking in
between; and the set-up they need (a tenant, its key, resources), made
through the gateway like any client."""

from __future__ import annotations

import asyncio
import math
import random
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

import aiohttp
import asyncpg
import httpx
import orjson

from bench.gateway_options import Options
from bench.grpc_load import BASE_TIME
from bench.stats import Latencies
from holdfast.tenancy import SCOPES
from holdfast.tenancy.keys import KeyRepository

OK = "OK"
WRONG = "WRONG"
P95_TARGET_MS = 100.0
ERROR_RATE_TARGET = 0.001
# Far above anything one machine can send: the per-key limit never bites.
BENCH_KEY_RATE = 1_000_000
HTTP_TIMEOUT_SECONDS = 10.0
HOLD_TTL_SECONDS = 300
SLOT_CAPACITY = 1000
# An example of each kind of error, this long at most.
DETAIL_CHARS = 200


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


@dataclass(frozen=True)
class Resource:
    id: str
    slot_ids: tuple[str, ...]
    # The availability window every user of it asks: all its slots.
    window: dict[str, str]


def user_address(i: int) -> str:
    """A 10.x.y.z address of user i's own."""
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def problem_reason(status: int, body: bytes) -> str:
    try:
        reason = orjson.loads(body).get("reason")
    except (orjson.JSONDecodeError, AttributeError):
        reason = None
    return f"HTTP {status} {reason or '-'}"


@dataclass(frozen=True)
class Answer:
    """A 2xx answer as a user got it."""

    status_code: int
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


class User:
    """One simulated person: browses, holds, releases, thinking in between."""

    def __init__(
        self,
        number: int,
        client: aiohttp.ClientSession,
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
    ) -> tuple[float, float, Answer | None, str]:
        """When it started, how long it took, and the answer if it was a 2xx
        (the caller judges and records it), else the failure (recorded here)."""
        started = time.perf_counter()
        try:
            async with self.client.request(
                method, url, params=params, json=body, headers={**self.headers, **(headers or {})}
            ) as response:
                answer = Answer(response.status, await response.read())
        except (aiohttp.ClientError, TimeoutError) as error:
            seconds = time.perf_counter() - started
            failure = type(error).__name__
            self.record.add(route, started, seconds, failure, str(error) or repr(error))
            return started, seconds, None, failure
        seconds = time.perf_counter() - started
        if not 200 <= answer.status_code < 300:
            failure = problem_reason(answer.status_code, answer.body)
            self.record.add(route, started, seconds, failure, answer.text)
            return started, seconds, None, failure
        return started, seconds, answer, OK

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


def new_user_session(options: Options, key: str, connections: int) -> aiohttp.ClientSession:
    """The users' client: aiohttp, whose C parser costs the bench a fraction
    of httpx's CPU per request (the 1000-user run was decided by its own
    client before: its event loop woke hundreds of ms late)."""
    return aiohttp.ClientSession(
        base_url=options.gateway_url,
        headers={"Authorization": f"Bearer {key}"},
        connector=aiohttp.TCPConnector(limit=connections),
        timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_SECONDS),
        json_serialize=lambda value: orjson.dumps(value).decode(),
        trust_env=False,  # a local gateway: no proxy, whatever the environment says
    )
