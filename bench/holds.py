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
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from bench.direct_path import ENCODERS, DirectPath
from bench.grpc_load import (
    CALL_TIMEOUT_SECONDS,
    CONNECT_TIMEOUT_SECONDS,
    Phase,
    ServiceClient,
    fire_at_once,
    keep_busy,
)
from bench.report import phase_row
from bench.stats import Latencies

HOT_SLOT_TARGET_SECONDS = 1.0
RATIO_TARGET = 0.6


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
    _print_hot_slot(options, tenant, server_version, hot)
    _print_distinct(options, service, direct, ratio)
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


def _print_hot_slot(options: Options, tenant: str, server_version: str, hot: HotSlotResult) -> None:
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


def _print_distinct(options: Options, service: Phase, direct: Phase, ratio: float) -> None:
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
        print(phase_row(phase, 16, "9.1f", "8.1f"))
        for name, count in phase.others.items():
            print(f"    {name}: {count}")
    print(
        f"  ratio service/direct {ratio:.2f}  "
        f"(target >= {RATIO_TARGET}: {_verdict(ratio >= RATIO_TARGET)})\n"
    )


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
