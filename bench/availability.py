"""Availability benchmarks against running booking and availability services.

    python -m bench.availability --booking-target HOST:PORT \
        --availability-target HOST:PORT --redis-url URL [--availability-metrics URL]

1. Cache hits: GetAvailability for one resource and range, warmed first, from
   many concurrent callers over several gRPC channels.
2. Cache misses: the same load, but every call asks a range nobody asked
   before (its start moved back by a number of seconds unique in the run), so
   every answer is read from Postgres.
3. Raw Redis GET: redis-py's asyncio client at the same concurrency on a key
   holding as many bytes as the cached answer. What the hits reach as a share
   of it is the cost of everything around a cache lookup (gRPC, the handler,
   the service process); the design targets are hit p99 < 5 ms and a ratio
   of at least 0.5.
4. Invalidation lag: sequential rounds of hold, warm, ConfirmHold; the time
   from ConfirmHold's answer until GetAvailability shows the booking, polled
   back to back. Target p99 < 50 ms. With --availability-metrics the service's
   own lag histogram (commit to invalidation applied) is read around it.

Hits, raw GETs and misses run in alternating rounds so drift in the machine's
load weighs on all three alike. Setup goes through the booking service's
gRPC API in a fresh tenant `bench-xxxxxxxx` per run. The last line printed is
one JSON object with every figure. Exit status 1 means some answer was wrong
(or a confirmed booking never showed); missed targets are reported, not failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import grpc
from redis.asyncio import Redis

from bench.availability_client import (
    AvailabilityClient,
    Call,
    ResourceAvailability,
    redis_getter,
    run_rounds,
)
from bench.availability_lag import LagRounds
from bench.availability_options import Options
from bench.availability_report import report
from bench.availability_results import Results
from bench.grpc_load import (
    BASE_TIME,
    CALL_TIMEOUT_SECONDS,
    ServiceClient,
    keep_busy,
)
from bench.metrics import Metrics
from holdfast.contracts.booking.v1 import booking_pb2_grpc

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


def phase_calls(
    availability: AvailabilityClient, setup: Setup, options: Options, redis_get: Call
) -> dict[str, Call]:
    """The three throughput phases' calls, each checking its answers."""
    expected = setup.expected
    expected_slots = setup.expected_misses.slots
    hits = availability.reader(
        setup.hit_resource, lambda i: hit_window(options), lambda a: a == expected
    )
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

    return {"cache hits": hits, "redis GET": redis_get, "cache misses": miss}


async def measure(options: Options, tenant: str, redis: Redis) -> Results | None:
    setup_client = ServiceClient(options.booking_target, tenant, 1)
    availability = AvailabilityClient(options.availability_target, tenant, options.channels)
    booking_channel = grpc.aio.insecure_channel(options.booking_target)
    metrics = Metrics(options.availability_metrics)
    try:
        for name, connect in (
            (f"booking service at {options.booking_target}", setup_client.connect),
            (f"availability service at {options.availability_target}", availability.connect),
        ):
            try:
                await connect()
            except TimeoutError:
                print(f"no {name} answers", file=sys.stderr)
                return None
        if not await availability.wait_until_cache_live(CACHE_LIVE_WAIT_SECONDS):
            print(
                "the availability cache is not live (degraded to Postgres): nothing to measure",
                file=sys.stderr,
            )
            return None
        setup = await prepare(setup_client, availability, options)
        for first in (setup.expected, setup.expected_misses):
            if not well_formed(first, options):
                print(f"unexpected first answer: {first}", file=sys.stderr)
                return None

        value = setup.expected.SerializeToString()
        key = f"{tenant}:raw-get"
        await redis.set(key, value, ex=3600)
        calls = phase_calls(availability, setup, options, redis_getter(redis, key, value))
        # Opens every connection and grows the service's and the Redis pools.
        for call in calls.values():
            await keep_busy("warm-up", call, options.concurrency, options.warmup, None)
        measured = await run_rounds(calls, metrics, options)

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
        await redis.delete(key)
    finally:
        await booking_channel.close()
        await availability.close()
        await setup_client.close()
    return Results(
        len(value), measured["cache hits"], measured["redis GET"], measured["cache misses"], lag
    )


async def run(options: Options) -> int:
    tenant = f"bench-{secrets.token_hex(4)}"
    redis = Redis.from_url(
        options.redis_url,
        max_connections=options.concurrency,
        socket_timeout=CALL_TIMEOUT_SECONDS,
        client_name="holdfast-bench",
    )
    try:
        info = await redis.info("server")
        redis_version = str(info.get("redis_version", "?"))
        results = await measure(options, tenant, redis)
    finally:
        await redis.aclose()
    if results is None:
        return 2
    print(json.dumps(report(options, tenant, redis_version, results), separators=(",", ":")))
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
        "--redis-url",
        default=os.environ.get("HOLDFAST_REDIS_URL"),
        help="for the raw GET phase (default: $HOLDFAST_REDIS_URL)",
    )
    parser.add_argument(
        "--availability-metrics",
        default=None,
        metavar="URL",
        help="the availability service's /metrics, e.g. http://localhost:9102/metrics",
    )
    parser.add_argument("--channels", type=int, default=4, help="gRPC channels (connections)")
    parser.add_argument("--concurrency", type=int, default=64)
    work = parser.add_mutually_exclusive_group()
    work.add_argument("--seconds", type=float, help="length of each phase round (default 5)")
    work.add_argument("--requests", type=int, help="requests per phase round instead")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per phase")
    parser.add_argument(
        "--warmup",
        type=int,
        default=500,
        help="warm-up requests per phase; at least --concurrency, to open every connection",
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
    if not args.redis_url:
        parser.error("--redis-url or HOLDFAST_REDIS_URL is required")
    if args.warmup < args.concurrency:
        parser.error("--warmup must be at least --concurrency")
    if args.requests is None and args.seconds is None:
        args.seconds = 5.0
    return Options(
        booking_target=args.booking_target,
        availability_target=args.availability_target,
        redis_url=args.redis_url,
        availability_metrics=args.availability_metrics,
        channels=max(1, args.channels),
        concurrency=max(1, args.concurrency),
        requests=args.requests or 0,
        seconds=args.seconds,
        rounds=max(1, args.rounds),
        warmup=args.warmup,
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
