"""Does outbox pruning keep up with the write rate? Holds at a fixed rate for
minutes on end, while the outbox's size is sampled.

    python -m devtools testenv -- python -m bench.outbox_growth [--rate 400] [--minutes 10]
    python -m bench.outbox_growth --database-url DSN --redis-url URL

A booking service of the bench's own runs as a process (bench.local_services:
a fresh database, its own Redis prefix), with a short outbox retention
(`--retention`, 60 s) so that a run of minutes reaches the steady state an
hour's retention reaches in production. Holds of one place, `--ttl` (10 s)
long, are made at `--rate` a second over `--slots` slots; each writes two
outbox rows: its creation, then its expiry by the sweeper. Every
`--sample-seconds` the outbox is counted in Postgres.

Pruning keeps up when, once the retention has passed, the row count stays
flat (about rate x 2 rows x (retention + prune interval)) instead of growing,
and rows pruned a second match rows written a second. The last line printed
is one JSON object with every sample.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from google.protobuf.duration_pb2 import Duration

from bench.grpc_load import OK, HoldCall, ServiceClient
from bench.local_services import ServiceProcess, engine_urls, fresh_database
from bench.metrics import Metrics

PRUNED_METRIC = "holdfast_outbox_pruned_total"
# Calls in flight at most; beyond it the bench falls behind its rate (and says so).
MAX_IN_FLIGHT = 256


@dataclass(frozen=True)
class Options:
    database_url: str
    redis_url: str
    rate: float
    minutes: float
    ttl: float
    retention: float
    slots: int
    sample_seconds: float


@dataclass(frozen=True)
class Sample:
    second: float
    holds: int  # answered OK so far
    rows: int  # in the outbox now
    pending: int  # of which not yet published
    written: int  # rows ever written (the last id)
    pruned: int  # rows ever pruned (the service's counter)
    table_mb: float  # on disk, indexes included
    dead: int  # dead row versions autovacuum has yet to reclaim


async def take_sample(db: asyncpg.Pool, metrics: Metrics, started: float, holds: int) -> Sample:
    row = await db.fetchrow(
        """
        SELECT count(*) AS rows, count(*) FILTER (WHERE published_at IS NULL) AS pending,
               coalesce((SELECT last_value FROM outbox_id_seq), 0) AS written,
               pg_total_relation_size('outbox') AS bytes,
               (SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'outbox') AS dead
        FROM outbox
        """
    )
    pruned = (await metrics.read()).get(PRUNED_METRIC, 0.0)
    return Sample(
        second=round(time.perf_counter() - started, 1),
        holds=holds,
        rows=row["rows"],
        pending=row["pending"],
        written=row["written"],
        pruned=round(pruned),
        table_mb=round(row["bytes"] / 1e6, 1),
        dead=row["dead"] or 0,
    )


class Holder:
    """Starts one hold every 1/rate seconds, whatever the answers."""

    def __init__(self, call: HoldCall) -> None:
        self.outcomes: Counter[str] = Counter()
        self.behind = 0  # starts skipped because MAX_IN_FLIGHT calls were waiting
        self._call = call
        self._in_flight: set[asyncio.Task[None]] = set()

    async def _one(self, i: int) -> None:
        self.outcomes[await self._call(i)] += 1

    async def run(self, rate: float, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        i = 0
        while (now := loop.time()) < start + seconds:
            due = int((now - start) * rate)
            while i < due:
                if len(self._in_flight) >= MAX_IN_FLIGHT:
                    self.behind += due - i
                    i = due
                    break
                task = asyncio.create_task(self._one(i))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
                i += 1
            await asyncio.sleep(0.005)
        await asyncio.gather(*self._in_flight)


async def measure(options: Options, workdir: Path) -> tuple[list[Sample], Holder]:
    tenant = f"bench-{secrets.token_hex(4)}"
    async with fresh_database(options.database_url, "outbox_growth") as database_url:
        booking = ServiceProcess.start(
            "services.booking",
            "booking",
            workdir / "booking.log",
            {
                "database_url": database_url,
                "redis_url": options.redis_url,
                "redis_prefix": f"bench-{secrets.token_hex(4)}",
                "outbox_retention_seconds": str(options.retention),
                "hold_ttl_min_seconds": str(min(10, int(options.ttl))),
            },
        )
        client = ServiceClient(booking.target, tenant, 4)
        db = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
        try:
            await booking.wait_until_serving()
            await client.connect()
            resource_id = await client.resource(100_000)
            slot_ids = await client.slots(resource_id, options.slots, 100_000)
            ttl = Duration()
            ttl.FromNanoseconds(int(options.ttl * 1e9))
            holder = Holder(client.holder(resource_id, slot_ids, ttl))
            metrics = Metrics(booking.metrics_url)
            started = time.perf_counter()
            samples = [await take_sample(db, metrics, started, 0)]
            run = asyncio.create_task(holder.run(options.rate, options.minutes * 60))
            while not run.done():
                await asyncio.wait({run}, timeout=options.sample_seconds)
                sample = await take_sample(db, metrics, started, holder.outcomes[OK])
                samples.append(sample)
                print(_line(samples), file=sys.stderr)
            await run
        finally:
            await db.close()
            await client.close()
            await booking.stop()
    return samples, holder


def _line(samples: list[Sample]) -> str:
    s = samples[-1]
    prev = samples[-2] if len(samples) > 1 else s
    dt = max(s.second - prev.second, 1e-9)
    return (
        f"  {s.second:7.0f} s  holds/s {(s.holds - prev.holds) / dt:6.0f}  "
        f"written/s {(s.written - prev.written) / dt:6.0f}  "
        f"pruned/s {(s.pruned - prev.pruned) / dt:6.0f}  "
        f"rows {s.rows:8d}  pending {s.pending:6d}  dead {s.dead:7d}  {s.table_mb:7.1f} MB"
    )


def report(options: Options, samples: list[Sample], holder: Holder) -> dict[str, Any]:
    print(
        f"holdfast outbox growth: holds at {options.rate:g}/s for {options.minutes:g} min, "
        f"TTL {options.ttl:g} s, outbox retention {options.retention:g} s\n"
        f"  {os.cpu_count()} CPUs, Python {platform.python_version()}\n"
    )
    for i in range(1, len(samples)):
        print(_line(samples[: i + 1]))
    first, last = samples[0], samples[-1]
    elapsed = last.second - first.second
    # The steady state: once rows older than the retention exist and a prune
    # interval (10 s by default) has passed.
    settled = [s for s in samples if s.second >= options.retention + 30]
    figures: dict[str, Any] = {
        "holds_per_s": round((last.holds - first.holds) / elapsed, 1),
        "rows_written_per_s": round((last.written - first.written) / elapsed, 1),
        "rows_pruned_per_s": round((last.pruned - first.pruned) / elapsed, 1),
        "outcomes": dict(holder.outcomes),
        "starts_behind_rate": holder.behind,
    }
    if len(settled) >= 2:
        a, b = settled[0], settled[-1]
        span = b.second - a.second
        figures["steady"] = {
            "from_s": a.second,
            "to_s": b.second,
            "rows_min": min(s.rows for s in settled),
            "rows_max": max(s.rows for s in settled),
            "rows_growth_per_min": round((b.rows - a.rows) / span * 60, 1),
            "table_mb_min": min(s.table_mb for s in settled),
            "table_mb_max": max(s.table_mb for s in settled),
            "written_per_s": round((b.written - a.written) / span, 1),
            "pruned_per_s": round((b.pruned - a.pruned) / span, 1),
        }
        steady = figures["steady"]
        print(
            f"\n  steady state ({a.second:.0f}-{b.second:.0f} s): rows between "
            f"{steady['rows_min']} and {steady['rows_max']}, growth "
            f"{steady['rows_growth_per_min']:+.0f} rows/min, {steady['table_mb_min']}-"
            f"{steady['table_mb_max']} MB on disk; written "
            f"{steady['written_per_s']:.0f}/s, pruned {steady['pruned_per_s']:.0f}/s"
        )
    print(
        f"  overall: {figures['holds_per_s']:.0f} holds/s, {figures['rows_written_per_s']:.0f}"
        f" rows written/s, {figures['rows_pruned_per_s']:.0f} pruned/s; answers "
        + ", ".join(f"{k} {v}" for k, v in holder.outcomes.items())
        + (f"; {holder.behind} holds not started (bench behind its rate)" if holder.behind else "")
        + "\n"
    )
    return {
        "bench": "outbox_growth",
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "options": {
            k: v for k, v in asdict(options).items() if k not in ("database_url", "redis_url")
        },
        **figures,
        "samples": [asdict(s) for s in samples],
    }


def parse(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="a Postgres server to make a database on")
    parser.add_argument("--redis-url")
    parser.add_argument("--rate", type=float, default=400.0, help="holds a second")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--ttl", type=float, default=10.0, help="each hold's, in seconds")
    parser.add_argument("--retention", type=float, default=60.0, help="the outbox's, seconds")
    parser.add_argument("--slots", type=int, default=256)
    parser.add_argument("--sample-seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    database_url, redis_url = engine_urls(args.database_url, args.redis_url)
    return Options(
        database_url,
        redis_url,
        args.rate,
        args.minutes,
        args.ttl,
        args.retention,
        args.slots,
        args.sample_seconds,
    )


def main(argv: Sequence[str] | None = None) -> int:
    options = parse(argv)
    logs = Path(tempfile.mkdtemp(prefix="hf-outbox-growth-"))
    try:
        samples, holder = asyncio.run(measure(options, logs))
    finally:
        shutil.rmtree(logs, ignore_errors=True)
    print(json.dumps(report(options, samples, holder)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
