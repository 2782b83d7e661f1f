"""Window-hold benchmarks against a running booking service.

    python -m bench.windows --target HOST:PORT --database-url DSN

1. Hot window: a thousand concurrent CreateHold for the same two-hour window
   on a resource with one table must give exactly one hold and a clean
   SOLD_OUT to everyone else, all answered within a second. The database is
   then asked what it holds: one live window, one hold, nothing else written.
2. Distinct windows: holds over many units (each call its own unit and
   window, 64 in flight by default) through the service over gRPC, and, in
   the same run in alternating rounds, the same transaction run by pgbench
   (bench/windows_hold.sql, the statements a window hold runs) on its own
   units. Their ratio is what everything around that SQL costs (gRPC, the
   service's reads of rules, hours and units, validation, the Python around
   it); pgbench is the ceiling on this machine.

Afterwards SQL checks that no two live windows on one unit overlap and that
the database holds exactly the windows the answers said. Setup goes through
the gRPC API in a fresh tenant `bench-xxxxxxxx` per run. The last line
printed is one JSON object with every figure. Exit status 1: the hot window
was sold twice, a window overlaps another, or the database disagrees with the
answers; missed performance targets are reported, not failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import asyncpg

from bench.grpc_load import (
    BASE_TIME,
    CALL_TIMEOUT_SECONDS,
    CONNECT_TIMEOUT_SECONDS,
    Phase,
    fire_at_once,
    keep_busy,
)
from bench.pgbench import Pgbench, PgbenchError
from bench.windows_client import SEATING, STRIDE, TURNOVER, WindowClient
from bench.windows_report import Checks, HotWindow, print_distinct, print_hot_window

# Each pgbench run starts its clients' window numbers this far after the last
# run's, so runs never reuse a window (a unit fits ~190,000 windows before
# the guard's 2106 bound).
PGBENCH_WINDOWS_PER_RUN = 30_000
MAX_ROUNDS = 4


@dataclass(frozen=True)
class Options:
    target: str
    database_url: str
    channels: int
    hot_requests: int
    concurrency: int
    units: int
    seconds: float
    rounds: int
    warmup: int
    pgbench: str | None
    pgbench_clients: int
    pgbench_threads: int


async def hot_window(client: WindowClient, conn: asyncpg.Connection, requests: int) -> HotWindow:
    resource_id, _ = await client.windowed("bench hot window", units=1)
    phase = await fire_at_once("hot window", client.same_window_holder(resource_id), requests)
    row = await conn.fetchrow(
        """
        SELECT (SELECT count(*) FROM holds WHERE tenant_id = $1 AND resource_id = $2) AS holds,
               (SELECT count(*) FROM unit_windows
                WHERE tenant_id = $1 AND resource_id = $2 AND live) AS live_windows
        """,
        client.tenant,
        resource_id,
        timeout=CALL_TIMEOUT_SECONDS,
    )
    return HotWindow(phase, row["holds"], row["live_windows"])


class PgbenchRounds:
    """The pgbench side: its own resource with one unit per client."""

    def __init__(self, pgbench: Pgbench, tenant: str, resource_id: str, units: list[str]) -> None:
        self.pgbench = pgbench
        self.variables = {
            "tenant": tenant,
            "resource": resource_id,
            "units": "{" + ",".join(units) + "}",
            "base": str(int(BASE_TIME.timestamp())),
            "stride": str(int(STRIDE.total_seconds())),
            "seating": str(int(SEATING.total_seconds())),
            "turnover": str(int(TURNOVER.total_seconds())),
        }
        self.runs = 0
        self.transactions = 0

    async def run(self, label: str, seconds: float) -> Phase:
        first = self.runs * PGBENCH_WINDOWS_PER_RUN
        self.runs += 1
        phase = await self.pgbench.run(label, seconds, self.variables | {"k": str(first)})
        self.transactions += phase.ok
        return phase


async def distinct_windows(
    client: WindowClient, pgbench: Pgbench, options: Options
) -> tuple[Phase, Phase, PgbenchRounds, int]:
    """Both paths warmed up, then measured in alternating rounds (service,
    pgbench, pgbench, service, ...) so that drift weighs on both alike.
    Returns the phases, the pgbench side and how many service holds succeeded
    in all (warm-up included)."""
    service_resource, service_units = await client.windowed("bench windows", options.units)
    pg_resource, pg_units = await client.windowed("bench windows pgbench", options.pgbench_clients)
    holder = client.spread_holder(service_resource, service_units)
    rounds = PgbenchRounds(pgbench, client.tenant, pg_resource, pg_units)
    warm = await keep_busy("warm-up", holder, options.concurrency, options.warmup, None)
    await rounds.run("warm-up", 2)

    service_rounds: list[Phase] = []
    pg_rounds: list[Phase] = []
    for r in range(options.rounds):
        order = ("service", "pgbench") if r % 2 == 0 else ("pgbench", "service")
        for path in order:
            if path == "service":
                service_rounds.append(
                    await keep_busy("gRPC service", holder, options.concurrency, 0, options.seconds)
                )
            else:
                pg_rounds.append(await rounds.run("pgbench", options.seconds))
    service = Phase.merge("gRPC service", service_rounds)
    ceiling = Phase.merge("pgbench", pg_rounds)
    return service, ceiling, rounds, warm.ok + service.ok


async def check_windows(conn: asyncpg.Connection, tenant: str, expected_live: int) -> Checks:
    """No two live windows on one unit overlap (each against the one before
    it on the unit), and the live windows are as many as the holds answered."""
    row = await conn.fetchrow(
        """
        SELECT count(*) AS live,
               count(*) FILTER (WHERE guard_from < previous_until) AS overlapping
        FROM (SELECT guard_from,
                     lag(guard_until) OVER (PARTITION BY unit_id ORDER BY guard_from)
                         AS previous_until
              FROM unit_windows WHERE tenant_id = $1 AND live) w
        """,
        tenant,
        timeout=120,
    )
    return Checks(row["live"], expected_live, row["overlapping"])


async def run(options: Options) -> int:
    tenant = f"bench-{secrets.token_hex(4)}"
    try:
        pgbench = Pgbench.find(
            options.database_url, options.pgbench_clients, options.pgbench_threads, options.pgbench
        )
    except PgbenchError as error:
        print(error, file=sys.stderr)
        return 2
    client = WindowClient(options.target, tenant, options.channels)
    try:
        await client.connect()
    except TimeoutError:
        print(f"no booking service answers at {options.target}", file=sys.stderr)
        return 2
    conn = await asyncpg.connect(options.database_url, timeout=CONNECT_TIMEOUT_SECONDS)
    try:
        server_version: str = await conn.fetchval("SHOW server_version")
        print(
            f"holdfast window-hold benchmark  target={options.target}  tenant={tenant}\n"
            f"  {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"PostgreSQL {server_version}, {options.channels} gRPC channels, {pgbench.path}\n"
        )
        hot = await hot_window(client, conn, options.hot_requests)
        print_hot_window(hot)
        service, ceiling, rounds, service_ok = await distinct_windows(client, pgbench, options)
        ratio = service.throughput / ceiling.throughput if ceiling.throughput else 0.0
        checks = await check_windows(conn, tenant, hot.phase.ok + service_ok + rounds.transactions)
        print_distinct(options, service, ceiling, ratio, checks)
    except PgbenchError as error:
        print(error, file=sys.stderr)
        return 2
    finally:
        await conn.close()
        await client.close()
    print(
        json.dumps(
            {
                "bench": "windows",
                "time": datetime.now(UTC).isoformat(timespec="seconds"),
                "tenant": tenant,
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "postgres": server_version,
                },
                "options": asdict(options) | {"database_url": None},
                "hot_window": hot.figures(),
                "distinct": {
                    "service": service.figures(),
                    "pgbench": ceiling.figures(),
                    "ratio": round(ratio, 3),
                },
                "checks": asdict(checks),
            },
            separators=(",", ":"),
        )
    )
    return 0 if hot.consistent and checks.passed else 1


def parse(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.windows", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--target", default="localhost:50051", help="booking gRPC address")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("HOLDFAST_DATABASE_URL"),
        help="the service's Postgres, for pgbench and the checks (default: $HOLDFAST_DATABASE_URL)",
    )
    parser.add_argument("--channels", type=int, default=4, help="gRPC channels (connections)")
    parser.add_argument("--hot-requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64, help="service holds in flight")
    parser.add_argument("--units", type=int, default=128, help="units the service's holds use")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each round")
    parser.add_argument("--rounds", type=int, default=2, help="measured rounds per path")
    parser.add_argument("--warmup", type=int, default=500, help="service holds before measuring")
    parser.add_argument("--pgbench", default=None, help="pgbench binary (default: found)")
    parser.add_argument("--pgbench-clients", type=int, default=16)
    parser.add_argument("--pgbench-threads", type=int, default=2)
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("--database-url or HOLDFAST_DATABASE_URL is required")
    if args.units < args.concurrency:
        parser.error("--units must be at least --concurrency, so calls in flight share no unit")
    if not 1 <= args.rounds <= MAX_ROUNDS:
        parser.error(f"--rounds must be between 1 and {MAX_ROUNDS}")
    if not 1 <= args.seconds <= 60:
        parser.error("--seconds must be between 1 and 60")
    return Options(
        target=args.target,
        database_url=args.database_url,
        channels=max(1, args.channels),
        hot_requests=max(2, args.hot_requests),
        concurrency=max(1, args.concurrency),
        units=args.units,
        seconds=args.seconds,
        rounds=args.rounds,
        warmup=max(0, args.warmup),
        pgbench=args.pgbench,
        pgbench_clients=max(1, args.pgbench_clients),
        pgbench_threads=max(1, args.pgbench_threads),
    )


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(run(parse(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
