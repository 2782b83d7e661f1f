"""Availability benchmarks against running booking and availability services.

    python -m bench.availability --booking-target HOST:PORT \
        --availability-target HOST:PORT [--availability-metrics URL]

1. Cache hits: GetAvailability for one resource and range, warmed first,
   `--concurrency` calls in flight from `--client-processes` processes.
2. Its ceiling, a bare `grpc.aio` server: the same client processes, the
   same request, against a server in a process of its own
   (bench.availability_ceiling) that answers the very bytes a hit answers,
   serialized once, with no interceptors or handler of ours. Hits ÷ bare is
   the share of gRPC's own capacity the service keeps (target >= 0.7, and hit
   p99 < 20 ms at 64 in flight). When the service runs on this machine its
   CPU per call is read from /proc next to the bare server's.
3. Cache misses: the same load from this process, but every call asks a
   range nobody asked before (its start moved back by a number of seconds
   unique in the run), so every answer is read from Postgres.
4. Invalidation lag: sequential rounds of hold, warm, ConfirmHold; the time
   from ConfirmHold's answer until GetAvailability shows the booking, polled
   back to back. Target p99 < 10 ms. With --availability-metrics the service's
   own lag histogram (commit to invalidation applied) is read around it.

Hits, bare and misses run in alternating rounds so drift in the machine's
load weighs on all three alike. Setup goes through the booking service's
gRPC API in a fresh tenant `bench-xxxxxxxx` per run. The last line printed is
one JSON object with every figure. Exit status 1 means some answer was wrong
(or a confirmed booking never showed); missed targets are reported, not failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

import grpc

from bench.availability_ceiling import SERVICE, Ceiling
from bench.availability_client import (
    AvailabilityClient,
    Call,
    Measured,
    PhaseRunner,
    ResourceAvailability,
    run_rounds,
)
from bench.availability_lag import LagRounds
from bench.availability_load import LoadClients, Target
from bench.availability_options import Options
from bench.availability_report import report
from bench.availability_results import BARE, HITS, MISSES, Results
from bench.grpc_load import BASE_TIME, Phase, ServiceClient, keep_busy
from bench.metrics import Metrics
from bench.processes import listening_pids
from holdfast.contracts.availability.v1 import availability_pb2
from holdfast.contracts.booking.v1 import booking_pb2_grpc
from holdfast.platform.context import TENANT_ID_KEY
from holdfast.platform.proto_time import time_range

GET_AVAILABILITY = f"/{SERVICE}/GetAvailability"
CACHE_LIVE_WAIT_SECONDS = 15.0


# --- the benchmark ----------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    hit_resource: str
    miss_resource: str
    lag_resource: str
    lag_slot: str
    lag_capacity: int
    # The warmed answer every hit must equal.
    expected: ResourceAvailability
    # What every miss must show (each with its own time_range).
    expected_misses: ResourceAvailability


SLOT_CAPACITY = 10


def hit_window(options: Options) -> tuple[datetime, datetime]:
    return BASE_TIME, BASE_TIME + timedelta(hours=options.slots)


def miss_window(options: Options) -> Callable[[int], tuple[datetime, datetime]]:
    """Call i starts `i + 1` seconds before the first slot: a range nobody
    asked before (the resource is new), holding the same slots as a hit."""
    start, end = hit_window(options)

    def window(i: int) -> tuple[datetime, datetime]:
        return start - timedelta(seconds=i + 1), end

    return window


async def prepare(
    setup_client: ServiceClient, availability: AvailabilityClient, options: Options
) -> Setup:
    hit_resource = await setup_client.resource(SLOT_CAPACITY)
    await setup_client.slots(hit_resource, options.slots, SLOT_CAPACITY)
    miss_resource = await setup_client.resource(SLOT_CAPACITY)
    await setup_client.slots(miss_resource, options.slots, SLOT_CAPACITY)
    lag_capacity = max(1000, 2 * options.lag_rounds)
    lag_resource = await setup_client.resource(lag_capacity)
    [lag_slot] = await setup_client.slots(lag_resource, 1, lag_capacity)
    expected = await availability.get(hit_resource, *hit_window(options))
    # The hit range is never one the misses ask for: theirs start earlier.
    expected_misses = await availability.get(miss_resource, *hit_window(options))
    return Setup(
        hit_resource,
        miss_resource,
        lag_resource,
        lag_slot,
        lag_capacity,
        expected,
        expected_misses,
    )


def well_formed(answer: ResourceAvailability, options: Options) -> bool:
    """A fresh resource's answer: every slot there, open, nothing taken."""
    return len(answer.slots) == options.slots and all(
        (s.capacity, s.available, s.held, s.booked, s.open)
        == (SLOT_CAPACITY, SLOT_CAPACITY, 0, 0, True)
        for s in answer.slots
    )


def miss_call(availability: AvailabilityClient, setup: Setup, options: Options) -> Call:
    """A call asking a range nobody asked before, checking its answer."""
    expected_slots = setup.expected_misses.slots
    misses = availability.reader(
        setup.miss_resource,
        miss_window(options),
        lambda a: a.resource_id == setup.miss_resource and a.slots == expected_slots,
    )
    # One count for every miss, warm-up included: no range is asked twice.
    miss_count = 0

    async def miss(_: int) -> str:
        nonlocal miss_count
        miss_count += 1
        return await misses(miss_count)

    return miss


def hit_target(address: str, tenant: str, setup: Setup, options: Options) -> Target:
    """The hits' call as raw bytes: the same request and answer for the
    service and for its ceiling."""
    request = availability_pb2.GetAvailabilityRequest(
        resource_id=setup.hit_resource, time_range=time_range(*hit_window(options))
    )
    answer = availability_pb2.GetAvailabilityResponse(availability=setup.expected)
    return Target(
        address,
        GET_AVAILABILITY,
        request.SerializeToString(),
        answer.SerializeToString(),
        ((TENANT_ID_KEY, tenant),),
    )


async def throughput(
    options: Options, setup: Setup, availability: AvailabilityClient, metrics: Metrics
) -> dict[str, Measured]:
    """Hits, bare and misses in alternating rounds, after a warm-up each."""
    target = hit_target(options.availability_target, availability.tenant, setup, options)
    service_pid = options.availability_pid or local_pid(options.availability_target)
    with tempfile.TemporaryDirectory(prefix="holdfast-bench-") as scratch:
        ceiling = Ceiling(Path(scratch) / "answer.bin")
        per_process = max(1, options.channels // options.client_processes)
        load = LoadClients(options.client_processes, per_process)
        try:
            await ceiling.start(target.expected)
            await load.connect(HITS, target)
            await load.connect(BARE, replace(target, address=ceiling.target))
            miss = miss_call(availability, setup, options)
            for name in (HITS, BARE):
                await load.run("warm-up", name, options.concurrency, options.warmup_seconds)
            await keep_busy("warm-up", miss, options.concurrency, options.warmup, None)

            def loaded(name: str) -> Callable[[], Awaitable[Phase]]:
                return lambda: load.run(name, name, options.concurrency, options.seconds)

            async def misses() -> Phase:
                return await keep_busy(MISSES, miss, options.concurrency, 0, options.seconds)

            phases = {
                HITS: PhaseRunner(loaded(HITS), service_pid),
                BARE: PhaseRunner(loaded(BARE), ceiling.pid),
                MISSES: PhaseRunner(misses, service_pid),
            }
            return await run_rounds(phases, metrics, options.rounds)
        finally:
            await load.close()
            await ceiling.stop()


def local_pid(target: str) -> int | None:
    host, _, port = target.rpartition(":")
    if host.strip("[]") not in ("localhost", "127.0.0.1", "::1", "0.0.0.0", ""):
        return None
    # The first worker's, when several share the port.
    pids = listening_pids(int(port))
    return pids[0] if pids else None


async def connected(setup_client: ServiceClient, availability: AvailabilityClient) -> bool:
    for name, connect in (
        ("booking service", setup_client.connect),
        ("availability service", availability.connect),
    ):
        try:
            await connect()
        except TimeoutError:
            print(f"no {name} answers", file=sys.stderr)
            return False
    if not await availability.wait_until_cache_live(CACHE_LIVE_WAIT_SECONDS):
        print(
            "the availability cache is not live (degraded to Postgres): nothing to measure",
            file=sys.stderr,
        )
        return False
    return True


async def measure(options: Options, tenant: str) -> Results | None:
    setup_client = ServiceClient(options.booking_target, tenant, 1)
    availability = AvailabilityClient(options.availability_target, tenant, options.channels)
    booking_channel = grpc.aio.insecure_channel(options.booking_target)
    metrics = Metrics(options.availability_metrics)
    try:
        if not await connected(setup_client, availability):
            return None
        setup = await prepare(setup_client, availability, options)
        for first in (setup.expected, setup.expected_misses):
            if not well_formed(first, options):
                print(f"unexpected first answer: {first}", file=sys.stderr)
                return None
        measured = await throughput(options, setup, availability, metrics)
        lag_rounds = LagRounds(
            booking_pb2_grpc.BookingServiceStub(booking_channel),
            availability,
            tenant,
            setup.lag_resource,
            setup.lag_slot,
            setup.lag_capacity,
            options,
        )
        lag = await lag_rounds.run(metrics)
    finally:
        await booking_channel.close()
        await availability.close()
        await setup_client.close()
    answer_bytes = setup.expected.ByteSize()
    return Results(answer_bytes, measured[HITS], measured[BARE], measured[MISSES], lag)


async def run(options: Options) -> int:
    tenant = f"bench-{secrets.token_hex(4)}"
    results = await measure(options, tenant)
    if results is None:
        return 2
    print(json.dumps(report(options, tenant, results), separators=(",", ":")))
    if results.wrong:
        print(f"{results.wrong} wrong answers", file=sys.stderr)
        return 1
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.availability",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument(
        "--booking-target", default="localhost:50051", help="booking gRPC address (setup, holds)"
    )
    parser.add_argument(
        "--availability-target", default="localhost:50052", help="availability gRPC address"
    )
    parser.add_argument(
        "--availability-metrics",
        default=None,
        metavar="URL",
        help="the availability service's /metrics, e.g. http://localhost:9102/metrics",
    )
    parser.add_argument(
        "--availability-pid",
        type=int,
        default=None,
        help="the service's process, for its CPU (default: whoever listens on the target's port)",
    )
    parser.add_argument("--channels", type=int, default=4, help="gRPC channels (connections)")
    parser.add_argument(
        "--client-processes",
        type=int,
        default=2,
        help="processes sharing the hits' and the bare server's calls in flight",
    )
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each phase round")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per phase")
    parser.add_argument(
        "--warmup",
        type=int,
        default=500,
        help="warm-up misses; at least --concurrency, to open every connection",
    )
    parser.add_argument(
        "--warmup-seconds", type=float, default=1.0, help="warm-up of the hits and of the bare"
    )
    parser.add_argument("--slots", type=int, default=24, help="hourly slots in each answer")
    parser.add_argument(
        "--lag-rounds", type=int, default=200, help="sequential hold/confirm rounds"
    )
    parser.add_argument(
        "--lag-poll-ms", type=float, default=0.5, help="GetAvailability at most this often"
    )
    parser.add_argument(
        "--lag-settle-ms",
        type=float,
        default=20.0,
        help="wait after the hold shows, so its own invalidation is not in flight",
    )
    parser.add_argument(
        "--lag-timeout", type=float, default=10.0, help="seconds before a change counts as lost"
    )
    return parser


def parse(argv: Sequence[str] | None = None) -> Options:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.warmup < args.concurrency:
        parser.error("--warmup must be at least --concurrency")
    return Options(
        booking_target=args.booking_target,
        availability_target=args.availability_target,
        availability_metrics=args.availability_metrics,
        availability_pid=args.availability_pid,
        channels=max(1, args.channels),
        client_processes=max(1, args.client_processes),
        concurrency=max(1, args.concurrency),
        seconds=args.seconds,
        rounds=max(1, args.rounds),
        warmup=args.warmup,
        warmup_seconds=args.warmup_seconds,
        slots=max(1, args.slots),
        lag_rounds=args.lag_rounds,
        lag_poll_ms=args.lag_poll_ms,
        lag_settle_ms=args.lag_settle_ms,
        lag_timeout=args.lag_timeout,
    )


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(run(parse(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
