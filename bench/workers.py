"""More cores: availability hits from one worker process and from several.

    python -m bench.workers --booking-target HOST:PORT --database-url DSN \
        --redis-url URL [--workers 2] [--seconds 5] [--rounds 3]

Starts two availability services of its own next to the running stack (its
Postgres and Redis): one with one worker, one with --workers workers
sharing a port (HOLDFAST_AVAILABILITY_WORKERS). Client processes (as many as
there are CPUs, each with several channels) ask both for the same cached
answer (one resource, --slots hourly slots) in alternating rounds; each
side's hits/s and the ratio are printed, and the services' CPU from /proc.
The client shares the machine: on 2 cores, 2 workers cannot double
anything, and the figure says how much of the second core a service takes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import multiprocessing.pool
import os
import secrets
import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from bench.availability_client import AvailabilityClient
from bench.grpc_load import BASE_TIME, ServiceClient
from bench.local_services import ServiceProcess
from bench.processes import cpu_seconds

CHANNELS_PER_CLIENT = 4
IN_FLIGHT_PER_CLIENT = 32


def _hammer(target: str, tenant: str, resource: str, slots: int, seconds: float) -> int:
    """One client process: answers counted in `seconds`."""

    async def run() -> int:
        client = AvailabilityClient(target, tenant, CHANNELS_PER_CLIENT)
        end = BASE_TIME + timedelta(hours=slots)
        done = 0
        deadline = time.perf_counter() + seconds

        async def worker(n: int) -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                await client.get(resource, BASE_TIME, end, channel=n)
                done += 1

        await asyncio.gather(*(worker(n) for n in range(IN_FLIGHT_PER_CLIENT)))
        await client.close()
        return done

    return asyncio.run(run())


def _round(pool: multiprocessing.pool.Pool, args: tuple[str, str, str, int, float]) -> float:
    clients = os.cpu_count() or 1
    started = time.perf_counter()
    counts = pool.starmap(_hammer, [args] * clients)
    return sum(counts) / (time.perf_counter() - started)


async def _setup(options: argparse.Namespace, tenant: str) -> str:
    client = ServiceClient(options.booking_target, tenant, 1)
    resource = await client.resource(10)
    await client.slots(resource, options.slots, 10)
    await client.close()
    return resource


def _start(workers: int, options: argparse.Namespace, log_dir: Path) -> ServiceProcess:
    settings = {
        "database_url": options.database_url,
        "redis_url": options.redis_url,
        "availability_metrics_port": "-1",
        "availability_workers": str(workers),
    }
    return ServiceProcess.start(
        "services.availability", "availability", log_dir / f"{workers}w.log", settings
    )


def _family(pid: int) -> list[int]:
    """The process and its children (a parent's workers)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return [pid, *(int(c) for c in children)]


async def measure(options: argparse.Namespace) -> dict[str, object]:
    tenant = f"bench-{secrets.token_hex(4)}"
    resource = await _setup(options, tenant)
    log_dir = Path(options.log_dir)
    await asyncio.to_thread(log_dir.mkdir, parents=True, exist_ok=True)
    sides = {
        1: _start(1, options, log_dir),
        options.workers: _start(options.workers, options, log_dir),
    }
    rates: dict[int, list[float]] = {n: [] for n in sides}
    cpu: dict[int, float] = dict.fromkeys(sides, 0.0)
    try:
        for side in sides.values():
            await side.wait_until_serving()
        with multiprocessing.get_context("spawn").Pool(os.cpu_count() or 1) as pool:
            for side in sides.values():  # warm-up: connections, caches of every worker
                _round(pool, (side.target, tenant, resource, options.slots, 1.0))
            for _ in range(options.rounds):
                for n, side in sides.items():
                    pids = _family(side.process.pid)
                    before = cpu_seconds(pids) or 0.0
                    rates[n].append(
                        _round(
                            pool, (side.target, tenant, resource, options.slots, options.seconds)
                        )
                    )
                    cpu[n] += (cpu_seconds(pids) or 0.0) - before
    finally:
        for side in sides.values():
            await side.stop()
    return {"rates": rates, "cpu_s": cpu}


def report(options: argparse.Namespace, figures: dict[str, object]) -> None:
    rates: dict[int, list[float]] = figures["rates"]  # type: ignore[assignment]
    cpu: dict[int, float] = figures["cpu_s"]  # type: ignore[assignment]
    mean = {n: sum(r) / len(r) for n, r in rates.items()}
    seconds = options.seconds * options.rounds
    print(
        f"availability hits, {os.cpu_count()} CPUs, {os.cpu_count()} client processes x "
        f"{IN_FLIGHT_PER_CLIENT} in flight, {options.rounds} alternating rounds "
        f"of {options.seconds:g} s"
    )
    for n, r in rates.items():
        print(
            f"  {n} worker(s): {mean[n]:.0f} hits/s (rounds {', '.join(f'{x:.0f}' for x in r)}), "
            f"service cpu {cpu[n] / seconds:.2f} cores"
        )
    ratio = mean[options.workers] / mean[1] if mean[1] else 0.0
    print(f"  {options.workers} workers / 1 worker: {ratio:.2f}")
    print(
        json.dumps(
            {
                "bench": "workers",
                "hits_per_s": mean,
                "ratio": round(ratio, 3),
                "service_cores": {n: round(c / seconds, 3) for n, c in cpu.items()},
            }
        )
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.workers", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--booking-target", default="localhost:50051")
    parser.add_argument("--database-url", default=os.environ.get("HOLDFAST_DATABASE_URL"))
    parser.add_argument("--redis-url", default=os.environ.get("HOLDFAST_REDIS_URL"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--slots", type=int, default=24)
    parser.add_argument("--log-dir", default=".state/bench-workers")
    options = parser.parse_args(argv)
    if not options.database_url or not options.redis_url or options.workers < 2:
        parser.error("--database-url and --redis-url are required, --workers at least 2")
    report(options, asyncio.run(measure(options)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
