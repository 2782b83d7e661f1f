"""Hold benchmarks against a running booking service (design section 13).

    python -m bench.holds --target HOST:PORT --database-url DSN

1. Hot slot: a thousand concurrent CreateHold on one slot of capacity 10 must
   give exactly 10 holds and a clean SOLD_OUT to everyone else, all within
   half a second, with no lock timeouts. The slot row is then read from
   Postgres.
2. Distinct slots: holds spread over many slots (each call in flight on a
   slot of its own) through the service over gRPC and, in the same run in
   alternating rounds, the very SQL a slot hold runs (bench/slot_hold.sql) from
   pgbench, one slot per client. pgbench is the ceiling on this machine; the
   ratio of the two is what everything around that SQL costs (gRPC,
   interceptors, handlers, telemetry, the Python around it). Target >= 0.4.
   When the service runs on this machine, its CPU per hold (from /proc) is
   reported too.

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

from bench.grpc_load import (
    CALL_TIMEOUT_SECONDS,
    CONNECT_TIMEOUT_SECONDS,
    Phase,
    ServiceClient,
    fire_at_once,
    keep_busy,
)
from bench.holds_report import HotSlotResult, print_distinct, print_hot_slot
from bench.pgbench import SLOT_HOLD_SCRIPT, Pgbench, PgbenchError
from bench.processes import cpu_seconds, listening_pids

RATIO_TARGET = 0.4
MAX_ROUNDS = 4


@dataclass(frozen=True)
class Options:
    target: str
    database_url: str
    booking_pids: tuple[int, ...]
    channels: int
    hot_requests: int
    hot_capacity: int
    concurrency: int
    seconds: float
    slots: int
    warmup: int
    rounds: int
    pgbench: str | None
    pgbench_clients: int
    pgbench_threads: int


@dataclass
class Distinct:
    """Both paths' merged rounds, and the service's CPU seconds over its rounds."""

    service: Phase
    ceiling: Phase
    service_cpu_seconds: float | None

    @property
    def ratio(self) -> float:
        return self.service.throughput / self.ceiling.throughput if self.ceiling.throughput else 0

    @property
    def cpu_ms_per_hold(self) -> float | None:
        if self.service_cpu_seconds is None or not self.service.ok:
            return None
        return self.service_cpu_seconds / self.service.ok * 1000

    def figures(self) -> dict[str, Any]:
        return {
            "service": self.service.figures(),
            "pgbench": self.ceiling.figures(),
            "ratio": round(self.ratio, 3),
            "service_cpu_ms_per_hold": self.cpu_ms_per_hold,
            "target_met": self.ratio >= RATIO_TARGET,
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


async def distinct_slots(client: ServiceClient, pgbench: Pgbench, options: Options) -> Distinct:
    """Both paths warmed up, each on slots of its own, then measured in
    alternating rounds (service, pgbench, pgbench, service, ...) so that
    drift in the machine's load or the database's state weighs on both alike."""
    capacity = 1000
    service_resource = await client.resource(capacity)
    service_slots = await client.slots(service_resource, options.slots, capacity)
    # pgbench's slots: one per client, each with room for every transaction.
    pg_resource = await client.resource(1_000_000)
    pg_slots = await client.slots(pg_resource, options.pgbench_clients, 1_000_000)
    variables = {
        "tenant": client.tenant,
        "resource": pg_resource,
        "slots": "{" + ",".join(pg_slots) + "}",
    }
    holder = client.holder(service_resource, service_slots)
    await keep_busy("warm-up", holder, options.concurrency, options.warmup, None)
    await pgbench.run("warm-up", 2, variables)

    service_rounds: list[Phase] = []
    pg_rounds: list[Phase] = []
    cpu: float | None = 0.0
    for r in range(options.rounds):
        for path in ("service", "pgbench") if r % 2 == 0 else ("pgbench", "service"):
            if path == "pgbench":
                pg_rounds.append(await pgbench.run("pgbench", options.seconds, variables))
                continue
            before = cpu_seconds(options.booking_pids) if options.booking_pids else None
            service_rounds.append(
                await keep_busy("gRPC service", holder, options.concurrency, 0, options.seconds)
            )
            after = cpu_seconds(options.booking_pids) if options.booking_pids else None
            cpu = None if cpu is None or before is None or after is None else cpu + after - before
    return Distinct(
        Phase.merge("gRPC service", service_rounds), Phase.merge("pgbench", pg_rounds), cpu
    )


async def warm_up_service(client: ServiceClient, options: Options) -> None:
    """Opens every connection and grows the service's pool before anything counts."""
    resource_id = await client.resource(1000)
    slot_ids = await client.slots(resource_id, options.concurrency, 1000)
    await keep_busy(
        "warm-up", client.holder(resource_id, slot_ids), options.concurrency, options.warmup, None
    )


def figures(
    options: Options, tenant: str, server_version: str, hot: HotSlotResult, distinct: Distinct
) -> dict[str, Any]:
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
        "distinct": distinct.figures(),
    }


async def run(options: Options) -> int:
    tenant = f"bench-{secrets.token_hex(4)}"
    try:
        pgbench = Pgbench.find(
            options.database_url,
            options.pgbench_clients,
            options.pgbench_threads,
            options.pgbench,
            SLOT_HOLD_SCRIPT,
        )
    except PgbenchError as error:
        print(error, file=sys.stderr)
        return 2
    client = ServiceClient(options.target, tenant, options.channels)
    try:
        await client.connect()
    except TimeoutError:
        print(f"no booking service answers at {options.target}", file=sys.stderr)
        return 2
    conn = await asyncpg.connect(options.database_url, timeout=CONNECT_TIMEOUT_SECONDS)
    try:
        server_version: str = await conn.fetchval("SHOW server_version")
        print(
            f"holdfast hold benchmark  target={options.target}  tenant={tenant}\n"
            f"  {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"PostgreSQL {server_version}, {options.channels} gRPC channels, {pgbench.path}\n"
        )
        await warm_up_service(client, options)
        hot = await hot_slot(client, conn, options.hot_requests, options.hot_capacity)
        print_hot_slot(hot)
        distinct = await distinct_slots(client, pgbench, options)
        print_distinct(options, distinct.service, distinct.ceiling, distinct.cpu_ms_per_hold)
    except PgbenchError as error:
        print(error, file=sys.stderr)
        return 2
    finally:
        await conn.close()
        await client.close()
    print(
        json.dumps(figures(options, tenant, server_version, hot, distinct), separators=(",", ":"))
    )
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
        help="the service's Postgres, for pgbench and the checks (default: $HOLDFAST_DATABASE_URL)",
    )
    parser.add_argument(
        "--booking-pid",
        type=int,
        action="append",
        default=None,
        help="the booking service's process(es), for its CPU per hold "
        "(default: whatever listens on --target's port here)",
    )
    parser.add_argument("--channels", type=int, default=4, help="gRPC channels (connections)")
    parser.add_argument("--hot-requests", type=int, default=1000)
    parser.add_argument("--hot-capacity", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=64, help="service holds in flight")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each round")
    parser.add_argument("--slots", type=int, default=256, help="slots the service's holds use")
    parser.add_argument("--warmup", type=int, default=300, help="service holds before measuring")
    parser.add_argument("--rounds", type=int, default=2, help="measured rounds per path")
    parser.add_argument("--pgbench", default=None, help="pgbench binary (default: found)")
    parser.add_argument("--pgbench-clients", type=int, default=16)
    parser.add_argument("--pgbench-threads", type=int, default=2)
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("--database-url or HOLDFAST_DATABASE_URL is required")
    if args.slots < 2 * args.concurrency:
        parser.error("--slots must be at least twice --concurrency, so no two calls share a slot")
    if args.hot_requests < args.hot_capacity:
        parser.error("--hot-requests must be at least --hot-capacity")
    if not 1 <= args.rounds <= MAX_ROUNDS:
        parser.error(f"--rounds must be between 1 and {MAX_ROUNDS}")
    if not 1 <= args.seconds <= 60:
        parser.error("--seconds must be between 1 and 60")
    return Options(
        target=args.target,
        database_url=args.database_url,
        booking_pids=tuple(args.booking_pid or listening_pids(int(args.target.rsplit(":", 1)[1]))),
        channels=max(1, args.channels),
        hot_requests=args.hot_requests,
        hot_capacity=args.hot_capacity,
        concurrency=max(1, args.concurrency),
        seconds=args.seconds,
        slots=args.slots,
        warmup=max(0, args.warmup),
        rounds=args.rounds,
        pgbench=args.pgbench,
        pgbench_clients=max(1, args.pgbench_clients),
        pgbench_threads=max(1, args.pgbench_threads),
    )


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(run(parse(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
