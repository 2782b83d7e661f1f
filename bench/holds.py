"""Hold benchmarks against a running booking service (design section 13).

    python -m bench.holds --target HOST:PORT --database-url DSN

1. Hot slot: a thousand concurrent CreateHold on one slot of capacity 10 must
   give exactly 10 holds and a clean SOLD_OUT to everyone else, all within a
   second, with no lock timeouts. The slot row is then read from Postgres.
2. Distinct slots: holds spread over many slots at a fixed concurrency, once
   through the service over gRPC and once, in the same run, through the very
   same reservation code (`Reservations.create_hold` on a pool built like the
   service's) called directly on asyncpg. The ratio of the two throughputs is
   what everything around that code costs (gRPC, interceptors, handlers,
   telemetry, the extra process); the target is >= 0.6.

Setup (tenant, resources, slots) goes through the gRPC API like any client,
in a fresh tenant `bench-xxxxxxxx` per run. The last line printed is one JSON
object with every figure, for machines. Exit status 1 means the hot slot was
oversold or its row disagrees with the answers given; missed performance
targets are reported, not failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import grpc
from google.protobuf.duration_pb2 import Duration

from bench.stats import Latencies
from holdfast.contracts.booking.v1 import (
    booking_pb2,
    booking_pb2_grpc,
    inventory_pb2,
    inventory_pb2_grpc,
)
from holdfast.contracts.common.v1 import money_pb2
from holdfast.platform.context import TENANT_ID_KEY, correlation_id_var, new_correlation_id
from holdfast.platform.db import create_pool
from holdfast.platform.errors import DomainError
from holdfast.platform.grpc_errors import details_of
from holdfast.platform.proto_time import time_range
from services.booking import convert
from services.booking.config import BookingSettings
from services.booking.domain import Hold, HoldRequest
from services.booking.idempotency import IdempotentCall, ResponseCodec
from services.booking.repository import BookingRepository
from services.booking.reservations import Reservations

OK = "OK"
SOLD_OUT = "SOLD_OUT"
CALL_TIMEOUT_SECONDS = 30.0
CONNECT_TIMEOUT_SECONDS = 5.0
# Far in the future so bench slots never collide with anything a person made.
BASE_TIME = datetime(2041, 1, 1, tzinfo=UTC)
SLOTS_PER_CREATE = 500

HOT_SLOT_TARGET_SECONDS = 1.0
RATIO_TARGET = 0.6

HoldCall = Callable[[int], Awaitable[str]]


# --- outcomes -----------------------------------------------------------------


def outcome_of_status(code: grpc.StatusCode, reason: str) -> str:
    """One label per kind of answer: OK, SOLD_OUT, or CODE/REASON for the rest."""
    if code is grpc.StatusCode.FAILED_PRECONDITION and reason == SOLD_OUT:
        return SOLD_OUT
    return f"{code.name}/{reason or '-'}"


@dataclass
class Phase:
    """What one batch of holds produced."""

    label: str
    latencies: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    wall_seconds: float = 0.0
    client_cpu_seconds: float = 0.0
    # Holds/s of each round a merged phase came from.
    rounds: list[float] = field(default_factory=list)

    @property
    def ok(self) -> int:
        return self.outcomes[OK]

    @property
    def sold_out(self) -> int:
        return self.outcomes[SOLD_OUT]

    @property
    def others(self) -> dict[str, int]:
        return {k: v for k, v in sorted(self.outcomes.items()) if k not in (OK, SOLD_OUT)}

    @property
    def throughput(self) -> float:
        """Successful holds per second of wall time."""
        return self.ok / self.wall_seconds if self.wall_seconds else 0.0

    @classmethod
    def merge(cls, label: str, phases: Sequence[Phase]) -> Phase:
        """One phase out of several rounds: their calls, and their times added."""
        merged = cls(label)
        for phase in phases:
            merged.latencies.extend(phase.latencies)
            merged.outcomes.update(phase.outcomes)
            merged.wall_seconds += phase.wall_seconds
            merged.client_cpu_seconds += phase.client_cpu_seconds
        merged.rounds = [round(p.throughput, 1) for p in phases]
        return merged

    def figures(self) -> dict[str, Any]:
        return {
            "requests": len(self.latencies),
            "ok": self.ok,
            "sold_out": self.sold_out,
            "other_errors": self.others,
            "wall_s": round(self.wall_seconds, 4),
            "holds_per_s": round(self.throughput, 1),
            "client_cpu_s": round(self.client_cpu_seconds, 3),
            "rounds_holds_per_s": self.rounds,
            **{k: round(v, 2) for k, v in asdict(Latencies.of(self.latencies)).items()},
        }


# --- the service, over gRPC ---------------------------------------------------


class Channels:
    """Several channels to one service, calling for one tenant.

    Each channel gets its own subchannel pool, hence its own TCP connection:
    gRPC would otherwise share one HTTP/2 connection between channels to the
    same target, and that one connection would become the bottleneck.
    """

    def __init__(self, target: str, tenant: str, channels: int) -> None:
        self.tenant = tenant
        self.metadata = ((TENANT_ID_KEY, tenant),)
        self._channels = [
            grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
            for _ in range(channels)
        ]

    async def connect(self) -> None:
        await asyncio.wait_for(
            asyncio.gather(*(c.channel_ready() for c in self._channels)),
            CONNECT_TIMEOUT_SECONDS,
        )

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self._channels))


class ServiceClient(Channels):
    """Booking and inventory stubs over several channels for one tenant."""

    def __init__(self, target: str, tenant: str, channels: int) -> None:
        super().__init__(target, tenant, channels)
        self._booking = [booking_pb2_grpc.BookingServiceStub(c) for c in self._channels]
        self._inventory = inventory_pb2_grpc.InventoryServiceStub(self._channels[0])

    async def resource(self, capacity: int) -> str:
        response = await self._inventory.CreateResource(
            inventory_pb2.CreateResourceRequest(
                name="bench",
                time_zone="UTC",
                price=money_pb2.Money(currency_code="EUR", amount_minor=1000),
                default_capacity=capacity,
            ),
            metadata=self.metadata,
            timeout=CALL_TIMEOUT_SECONDS,
        )
        resource_id: str = response.resource.resource_id
        return resource_id

    async def slots(self, resource_id: str, count: int, capacity: int) -> list[str]:
        """`count` consecutive one-hour slots; several calls when they are many."""
        ids: list[str] = []
        for first in range(0, count, SLOTS_PER_CREATE):
            hours = range(first, min(count, first + SLOTS_PER_CREATE))
            response = await self._inventory.CreateSlots(
                inventory_pb2.CreateSlotsRequest(
                    resource_id=resource_id,
                    slots=[
                        inventory_pb2.SlotSpec(
                            time_range=time_range(
                                BASE_TIME + timedelta(hours=h), BASE_TIME + timedelta(hours=h + 1)
                            ),
                            capacity=capacity,
                        )
                        for h in hours
                    ],
                ),
                metadata=self.metadata,
                timeout=CALL_TIMEOUT_SECONDS,
            )
            ids.extend(s.slot_id for s in response.slots)
        return ids

    def holder(
        self, resource_id: str, slot_ids: Sequence[str], ttl: Duration | None = None
    ) -> HoldCall:
        """A call that holds one unit of slot `i mod len(slot_ids)` on channel
        `i mod n`, for `ttl` (the service's default if None)."""
        requests = [
            booking_pb2.CreateHoldRequest(
                resource_id=resource_id,
                slot_ids=[slot_id],
                quantity=1,
                customer_ref="bench",
                ttl=ttl,
            )
            for slot_id in slot_ids
        ]
        stubs = self._booking

        async def hold(i: int) -> str:
            try:
                await stubs[i % len(stubs)].CreateHold(
                    requests[i % len(requests)],
                    metadata=self.metadata,
                    timeout=CALL_TIMEOUT_SECONDS,
                )
            except grpc.aio.AioRpcError as error:
                details = details_of(error)
                return outcome_of_status(details.code, details.reason)
            return OK

        return hold


# --- the same reservation code, straight on asyncpg ----------------------------


def proto_encode(hold: Hold) -> bytes:
    """What the gRPC handler passes: the serialized CreateHoldResponse."""
    return booking_pb2.CreateHoldResponse(hold=convert.hold(hold)).SerializeToString()


def empty_encode(hold: Hold) -> bytes:
    return b""


# What a hold's response is made of; without a request id it is built, not stored.
EncodeHold = Callable[[Hold], bytes]
ENCODERS: dict[str, EncodeHold] = {"proto": proto_encode, "empty": empty_encode}


class DirectPath:
    """`Reservations` on a pool with the service's settings, no gRPC in between."""

    def __init__(self, settings: BookingSettings, pool: asyncpg.Pool, encode: EncodeHold) -> None:
        self.settings = settings
        self.pool = pool
        self.reservations = Reservations(BookingRepository(pool))
        self.call = IdempotentCall(None, ResponseCodec(encode, bytes, bytes))

    @classmethod
    async def open(cls, database_url: str, encode: EncodeHold) -> DirectPath:
        # The same settings object the service builds, so the same HOLDFAST_*
        # environment gives both paths the same pool size and timeouts.
        values: dict[str, Any] = {
            "database_url": database_url,
            # Never used: this path writes outbox rows like the service does,
            # and the running service's relay publishes them.
            "redis_url": "redis://127.0.0.1:6379/0",
        }
        settings = BookingSettings(**values)
        pool = await create_pool(
            settings,
            "holdfast-bench-direct",
            extra_settings={"lock_timeout": str(settings.lock_timeout_ms)},
        )
        return cls(settings, pool, encode)

    def holder(self, tenant: str, resource_id: str, slot_ids: Sequence[str]) -> HoldCall:
        ttl = timedelta(seconds=self.settings.hold_ttl_default_seconds)
        requests = [
            HoldRequest(
                resource_id=uuid.UUID(resource_id),
                slot_ids=(uuid.UUID(slot_id),),
                quantity=1,
                customer_ref="bench",
                ttl=ttl,
            )
            for slot_id in slot_ids
        ]
        actor = f"tenant:{tenant}"  # what the service records for a caller without x-actor

        async def hold(i: int) -> str:
            # As the server interceptor does: every call has its correlation id,
            # which the repository writes into the audit row.
            correlation_id_var.set(new_correlation_id())
            try:
                await self.reservations.create_hold(
                    tenant, requests[i % len(requests)], self.call, actor
                )
            except DomainError as error:
                code = getattr(grpc.StatusCode, error.kind.value)
                return outcome_of_status(code, error.reason)
            return OK

        return hold


# --- running a batch ------------------------------------------------------------


async def fire_at_once(label: str, call: HoldCall, count: int) -> Phase:
    """`count` calls started together; wall time runs until the last answer."""
    phase = Phase(label)
    ends: list[float] = []

    async def one(i: int) -> None:
        started = time.perf_counter()
        outcome = await call(i)
        ended = time.perf_counter()
        phase.latencies.append(ended - started)
        phase.outcomes[outcome] += 1
        ends.append(ended)

    cpu = time.process_time()
    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    phase.wall_seconds = max(ends) - start
    phase.client_cpu_seconds = time.process_time() - cpu
    return phase


async def keep_busy(
    label: str, call: HoldCall, concurrency: int, requests: int, seconds: float | None
) -> Phase:
    """`concurrency` workers calling back to back, for `requests` calls in all
    or, when `seconds` is given, until that much time has passed."""
    phase = Phase(label)
    next_index = 0
    deadline: float | None = None

    async def worker() -> None:
        nonlocal next_index
        while True:
            if deadline is not None:
                if time.perf_counter() >= deadline:
                    return
            elif next_index >= requests:
                return
            i, next_index = next_index, next_index + 1
            started = time.perf_counter()
            outcome = await call(i)
            phase.latencies.append(time.perf_counter() - started)
            phase.outcomes[outcome] += 1

    cpu = time.process_time()
    start = time.perf_counter()
    if seconds:
        deadline = start + seconds
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    phase.wall_seconds = time.perf_counter() - start
    phase.client_cpu_seconds = time.process_time() - cpu
    return phase


# --- the benchmark ----------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    target: str
    database_url: str
    channels: int
    hot_requests: int
    hot_capacity: int
    concurrency: int
    requests: int
    seconds: float | None
    slots: int
    warmup: int
    rounds: int
    encode: str


@dataclass
class HotSlotResult:
    phase: Phase
    capacity: int
    held: int
    booked: int
    live_holds: int

    @property
    def passed(self) -> bool:
        return (
            self.phase.ok == self.capacity
            and self.phase.sold_out == len(self.phase.latencies) - self.capacity
            and not self.phase.others
            and self.held == self.capacity
            and self.phase.wall_seconds < HOT_SLOT_TARGET_SECONDS
        )

    @property
    def consistent(self) -> bool:
        """Never oversold, and the row agrees with the answers callers got."""
        return self.held + self.booked <= self.capacity and self.held == self.phase.ok

    def figures(self) -> dict[str, Any]:
        return {
            **self.phase.figures(),
            "capacity": self.capacity,
            "slot_held": self.held,
            "slot_booked": self.booked,
            "live_holds": self.live_holds,
            "target_met": self.passed,
        }


async def hot_slot(
    client: ServiceClient, conn: asyncpg.Connection, requests: int, capacity: int
) -> HotSlotResult:
    resource_id = await client.resource(capacity)
    [slot_id] = await client.slots(resource_id, 1, capacity)
    phase = await fire_at_once("hot slot", client.holder(resource_id, [slot_id]), requests)
    row = await conn.fetchrow(
        """
        SELECT s.capacity, s.held, s.booked,
               (SELECT count(*) FROM hold_lines l JOIN holds h ON h.id = l.hold_id
                WHERE l.slot_id = s.id AND h.status = 'HELD') AS live_holds
        FROM slots s WHERE s.tenant_id = $1 AND s.id = $2
        """,
        client.tenant,
        uuid.UUID(slot_id),
        timeout=CALL_TIMEOUT_SECONDS,
    )
    return HotSlotResult(phase, row["capacity"], row["held"], row["booked"], row["live_holds"])


async def distinct_slots(
    client: ServiceClient, direct: DirectPath, options: Options
) -> tuple[Phase, Phase]:
    """Both paths, each warmed up and on slots of its own, in alternating
    rounds (service, direct, direct, service, ...) so that drift in the
    machine's load or the database's state weighs on both alike."""
    capacity = 1000

    async def prepare() -> tuple[str, list[str]]:
        resource_id = await client.resource(capacity)
        return resource_id, await client.slots(resource_id, options.slots, capacity)

    service_resource, service_slots = await prepare()
    direct_resource, direct_slots = await prepare()
    calls = {
        "gRPC service": client.holder(service_resource, service_slots),
        "direct asyncpg": direct.holder(client.tenant, direct_resource, direct_slots),
    }
    for call in calls.values():
        await keep_busy("warm-up", call, options.concurrency, options.warmup, None)

    rounds: dict[str, list[Phase]] = {label: [] for label in calls}
    for r in range(options.rounds):
        for label in list(calls) if r % 2 == 0 else reversed(list(calls)):
            phase = await keep_busy(
                label, calls[label], options.concurrency, options.requests, options.seconds
            )
            rounds[label].append(phase)
    service, direct_phase = (Phase.merge(label, phases) for label, phases in rounds.items())
    return service, direct_phase


async def warm_up_service(client: ServiceClient, options: Options) -> None:
    """Opens every connection and grows the service's pool before anything counts."""
    resource_id = await client.resource(1000)
    slot_ids = await client.slots(resource_id, options.concurrency, 1000)
    await keep_busy(
        "warm-up", client.holder(resource_id, slot_ids), options.concurrency, options.warmup, None
    )


# --- output -------------------------------------------------------------------------


def _fmt(value: float) -> str:
    return f"{value:8.1f}"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report(
    options: Options,
    tenant: str,
    server_version: str,
    hot: HotSlotResult,
    service: Phase,
    direct: Phase,
) -> dict[str, Any]:
    ratio = service.throughput / direct.throughput if direct.throughput else 0.0
    lat = Latencies.of(hot.phase.latencies)
    print(
        f"holdfast hold benchmark  target={options.target}  tenant={tenant}\n"
        f"  {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"PostgreSQL {server_version}, {options.channels} gRPC channels\n"
    )
    others = ", ".join(f"{k} {v}" for k, v in hot.phase.others.items()) or "none"
    print(
        f"hot slot: {len(hot.phase.latencies)} concurrent CreateHold (quantity 1) "
        f"on one slot of capacity {hot.capacity}\n"
        f"  ok {hot.phase.ok}   sold out {hot.phase.sold_out}   other errors: {others}\n"
        f"  last answer after {hot.phase.wall_seconds * 1000:.0f} ms   "
        f"latency p50 {lat.p50_ms:.0f}  p95 {lat.p95_ms:.0f}  p99 {lat.p99_ms:.0f}  "
        f"max {lat.max_ms:.0f} ms\n"
        f"  slot row in Postgres: held {hot.held}  booked {hot.booked}  "
        f"(live holds {hot.live_holds})\n"
        f"  target (exactly {hot.capacity} ok, the rest sold out, no other errors, "
        f"< {HOT_SLOT_TARGET_SECONDS:.0f} s): {_verdict(hot.passed)}\n"
    )
    work = f"{options.requests} holds" if options.seconds is None else f"{options.seconds:g} s"
    print(
        f"distinct slots: {options.rounds} alternating rounds of {work} per path over "
        f"{options.slots} slots, concurrency {options.concurrency}, after "
        f"{options.warmup} warm-up holds (direct path encodes: {options.encode})"
    )
    print(
        f"  {'path':<16}{'holds/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'errors':>8}{'client cpu':>12}   holds/s per round"
    )
    for phase in (service, direct):
        p = Latencies.of(phase.latencies)
        errors = len(phase.latencies) - phase.ok
        cpu_share = phase.client_cpu_seconds / phase.wall_seconds if phase.wall_seconds else 0
        print(
            f"  {phase.label:<16}{phase.throughput:9.1f}{_fmt(p.p50_ms)}{_fmt(p.p95_ms)}"
            f"{_fmt(p.p99_ms)}{_fmt(p.max_ms)}{errors:8d}{cpu_share:12.0%}   "
            + " ".join(f"{t:.0f}" for t in phase.rounds)
        )
        for name, count in phase.others.items():
            print(f"    {name}: {count}")
    print(
        f"  ratio service/direct {ratio:.2f}  "
        f"(target >= {RATIO_TARGET}: {_verdict(ratio >= RATIO_TARGET)})\n"
    )
    return {
        "bench": "holds",
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "target": options.target,
        "tenant": tenant,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "postgres": server_version,
        },
        "options": asdict(options) | {"database_url": None},
        "hot_slot": hot.figures(),
        "distinct": {
            "service": service.figures(),
            "direct": direct.figures(),
            "ratio": round(ratio, 3),
            "target_met": ratio >= RATIO_TARGET,
        },
    }


async def run(options: Options) -> int:
    tenant = f"bench-{secrets.token_hex(4)}"
    client = ServiceClient(options.target, tenant, options.channels)
    try:
        await client.connect()
    except TimeoutError:
        print(f"no booking service answers at {options.target}", file=sys.stderr)
        return 2
    conn = await asyncpg.connect(options.database_url, timeout=CONNECT_TIMEOUT_SECONDS)
    direct = await DirectPath.open(options.database_url, ENCODERS[options.encode])
    try:
        server_version: str = await conn.fetchval("SHOW server_version")
        await warm_up_service(client, options)
        hot = await hot_slot(client, conn, options.hot_requests, options.hot_capacity)
        service, direct_phase = await distinct_slots(client, direct, options)
        figures = report(options, tenant, server_version, hot, service, direct_phase)
    finally:
        await direct.pool.close()
        await conn.close()
        await client.close()
    print(json.dumps(figures, separators=(",", ":")))
    if not hot.consistent:
        print("hot slot: the slot row disagrees with the answers given", file=sys.stderr)
        return 1
    return 0


def parse(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.holds", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--target", default="localhost:50051", help="booking gRPC address")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("HOLDFAST_DATABASE_URL"),
        help="the service's Postgres (default: $HOLDFAST_DATABASE_URL)",
    )
    parser.add_argument("--channels", type=int, default=4, help="gRPC channels (connections)")
    parser.add_argument("--hot-requests", type=int, default=1000)
    parser.add_argument("--hot-capacity", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--requests", type=int, default=3000, help="holds per distinct phase")
    parser.add_argument(
        "--seconds", type=float, default=None, help="run each distinct phase this long instead"
    )
    parser.add_argument("--slots", type=int, default=256, help="slots per distinct phase")
    parser.add_argument("--warmup", type=int, default=300, help="warm-up holds per path")
    parser.add_argument(
        "--rounds", type=int, default=2, help="alternating measured rounds per distinct path"
    )
    parser.add_argument(
        "--encode",
        choices=sorted(ENCODERS),
        default="proto",
        help="what the direct path encodes inside the transaction; the service encodes proto",
    )
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("--database-url or HOLDFAST_DATABASE_URL is required")
    if args.slots < 2 * args.concurrency:
        parser.error("--slots must be at least twice --concurrency, so no two calls share a slot")
    if args.hot_requests < args.hot_capacity:
        parser.error("--hot-requests must be at least --hot-capacity")
    return Options(
        target=args.target,
        database_url=args.database_url,
        channels=max(1, args.channels),
        hot_requests=args.hot_requests,
        hot_capacity=args.hot_capacity,
        concurrency=args.concurrency,
        requests=args.requests,
        seconds=args.seconds,
        slots=args.slots,
        warmup=args.warmup,
        rounds=max(1, args.rounds),
        encode=args.encode,
    )


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(run(parse(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
