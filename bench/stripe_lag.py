"""Invalidation lag while Stripe is normal, slow and down, side by side
(ARCHITECTURE.md section 15: commit -> visible p99 < 10 ms, "also while
Stripe is slow").

    python -m devtools testenv -- python -m bench.stripe_lag [--rounds 200]
    python -m bench.stripe_lag --database-url DSN --redis-url URL

A fake Stripe runs in this process; booking and availability services of the
bench's own run as processes (bench.local_services: a fresh database, their
own Redis prefix), the booking service paying through the fake with the
default Stripe client settings (10 s timeout, 2 retries). Holds with an open
checkout are made while Stripe is normal; then, for each condition in turn:

- normal: Stripe answers at once;
- slow: every Stripe answer comes `--slow-seconds` (10) late;
- down: Stripe refuses connections;

rounds go, one every `--interval-ms`: read the slot's availability (so it is
cached), release a hold whose checkout is open (one transaction writes the
availability message and the action "expire this checkout at Stripe"), then
GetAvailability back to back until the release shows. The lag is from
ReleaseHold's answer to the first answer showing it; and, exactly, from the
release's commit (the outbox row's clock_timestamp) to its message arriving
on the Redis stream, read by this process: the relay's part. Every release adds a
Stripe action, so while Stripe is slow or down they pile up (in flight,
failing, backing off) as the rounds go on: the case the target names. The
availability service's own histogram (commit -> invalidation applied) is
read around each condition, and the booking service's payment action
counters too.

At the end Stripe recovers and the bench waits until every session was
expired at Stripe. The last line printed is one JSON object with every
figure. Exit status 1 means a release never showed or showed wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from redis.asyncio import Redis

from bench.availability_client import AvailabilityClient
from bench.grpc_load import ServiceClient
from bench.local_services import ServiceProcess, engine_urls, fresh_database
from bench.metrics import Metrics, ServiceLag
from bench.stats import Latencies
from bench.stripe_lag_options import Options
from bench.stripe_lag_rounds import CONDITIONS, Condition, LagRounds, Round, StreamWatch, actions_of
from devtools.fakestripe import FakeStripe, FakeStripeConfig
from holdfast.contracts.booking.v1 import booking_pb2_grpc
from holdfast.platform.streams import AVAILABILITY_TOPIC

LAG_P99_TARGET_MS = 10.0
RECOVERY_SECONDS = 300.0


async def set_condition(fake: FakeStripe, name: str, slow_seconds: float) -> None:
    if name == "slow":
        fake.slow_down(slow_seconds)
    elif name == "down":
        fake.slow_down(0)
        await fake.go_down()


async def expired_at_stripe(fake: FakeStripe, rounds: Sequence[Round]) -> int:
    return sum(fake.store.sessions[r.session_id]["status"] == "expired" for r in rounds)


async def measure(options: Options, workdir: Path) -> tuple[list[Condition], dict[str, Any]]:
    tenant = f"bench-{secrets.token_hex(4)}"
    async with (
        FakeStripe(FakeStripeConfig()) as fake,
        fresh_database(options.database_url, "stripe_lag") as database_url,
    ):
        prefix = f"bench-{secrets.token_hex(4)}"
        common = {
            "database_url": database_url,
            "redis_url": options.redis_url,
            "redis_prefix": prefix,
        }
        redis = Redis.from_url(options.redis_url)
        watch = StreamWatch(redis, f"{prefix}:stream:{AVAILABILITY_TOPIC}", tenant)
        booking, availability = _start_services(fake, workdir, common)
        client = ServiceClient(booking.target, tenant, 1)
        reader = AvailabilityClient(availability.target, tenant, 1)
        channel = grpc.aio.insecure_channel(booking.target)
        try:
            await _ready(booking, availability, client, reader)
            watch.start()
            rounds = LagRounds(
                client,
                booking_pb2_grpc.BookingServiceStub(channel),
                reader,
                await client.resource(10),
                options,
            )
            n, warmup = options.rounds, options.warmup
            prepared = await rounds.prepare(0, warmup + n * len(CONDITIONS))
            # Opens connections, fills pools, runs each code path once.
            await rounds.run(Condition("warm-up"), prepared[:warmup])
            prepared = prepared[warmup:]
            availability_metrics = Metrics(availability.metrics_url)
            booking_metrics = Metrics(booking.metrics_url)
            results = []
            for i, name in enumerate(CONDITIONS):
                await set_condition(fake, name, options.slow_seconds)
                condition = await _run_condition(
                    Condition(name),
                    rounds,
                    prepared[i * n : (i + 1) * n],
                    (availability_metrics, booking_metrics),
                    watch,
                )
                results.append(condition)
                print(f"  {name}: {len(condition.lags)} rounds", file=sys.stderr)
            recovery = await _recovery(fake, prepared)
        finally:
            await watch.stop()
            await redis.aclose()
            await channel.close()
            await client.close()
            await reader.close()
            await booking.stop()
            await availability.stop()
    return results, recovery


def _start_services(
    fake: FakeStripe, workdir: Path, common: dict[str, Any]
) -> tuple[ServiceProcess, ServiceProcess]:
    """The bench's own booking service (paying through `fake`) and availability service."""
    booking = ServiceProcess.start(
        "services.booking",
        "booking",
        workdir / "booking.log",
        {**common, "stripe_api_key": fake.api_key, "stripe_api_base": fake.base_url},
    )
    availability = ServiceProcess.start(
        "services.availability", "availability", workdir / "availability.log", common
    )
    return booking, availability


async def _ready(
    booking: ServiceProcess,
    availability: ServiceProcess,
    client: ServiceClient,
    reader: AvailabilityClient,
) -> None:
    await booking.wait_until_serving()
    await availability.wait_until_serving()
    await client.connect()
    await reader.connect()
    if not await reader.wait_until_cache_live(15.0):
        raise SystemExit("the availability cache never went live")


async def _run_condition(
    condition: Condition,
    rounds: LagRounds,
    prepared: Sequence[Round],
    metrics: tuple[Metrics, Metrics],
    watch: StreamWatch,
) -> Condition:
    """`prepared`'s rounds under one condition, with what the availability
    and booking services counted meanwhile and when each release's message
    arrived."""
    availability_metrics, booking_metrics = metrics
    before = await availability_metrics.read(), await booking_metrics.read()
    await rounds.run(condition, prepared)
    condition.service = ServiceLag.of(Metrics.delta(before[0], await availability_metrics.read()))
    condition.actions = actions_of(Metrics.delta(before[1], await booking_metrics.read()))
    await asyncio.sleep(0.5)  # the last messages' arrival noted
    condition.stream_lags = [
        watch.arrived[r.hold_id] for r in prepared if r.hold_id in watch.arrived
    ]
    return condition


async def _recovery(fake: FakeStripe, prepared: Sequence[Round]) -> dict[str, Any]:
    """Stripe recovers: every checkout released above ends expired at Stripe."""
    fake.slow_down(0)
    await fake.come_back()
    recovered = time.perf_counter()
    while await expired_at_stripe(fake, prepared) < len(prepared):
        if time.perf_counter() - recovered > RECOVERY_SECONDS:
            break
        await asyncio.sleep(0.5)
    return {
        "sessions": len(prepared),
        "expired_at_stripe": await expired_at_stripe(fake, prepared),
        "seconds_after_recovery": round(time.perf_counter() - recovered, 1),
        "expire_requests_answered": len([r for r in fake.requests() if r.path.endswith("/expire")]),
    }


def report(options: Options, results: list[Condition], recovery: dict[str, Any]) -> dict[str, Any]:
    print(
        f"holdfast invalidation lag while Stripe is slow or down\n"
        f"  {os.cpu_count()} CPUs, Python {platform.python_version()}; {options.rounds} rounds"
        f" per condition, one every {options.interval_ms:g} ms; slow = every Stripe answer"
        f" {options.slow_seconds:g} s late; down = connections refused\n"
    )
    print(
        f"  {'':<15}{'release -> visible (ms)':^36}  {'commit -> on stream (ms)':^36}\n"
        f"  {'stripe':<8}{'rounds':>7}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}"
        f"  {'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}{'service p99':>13}"
        f"  payment actions meanwhile"
    )
    for c in results:
        p = Latencies.of(c.lags)
        service = c.service
        bucket = (
            f"<= {service.p99_bucket_ms:g}"
            if service and service.p99_bucket_ms is not None
            else "-"
        )
        actions = ", ".join(f"{k} {v}" for k, v in c.actions.items()) or "none finished"
        q = Latencies.of(c.stream_lags)
        print(
            f"  {c.name:<8}{len(c.lags):7d}{p.p50_ms:9.2f}{p.p95_ms:9.2f}{p.p99_ms:9.2f}"
            f"{p.max_ms:9.2f}  {q.p50_ms:9.2f}{q.p95_ms:9.2f}{q.p99_ms:9.2f}{q.max_ms:9.2f}"
            f"{bucket:>13}  {actions}"
        )
        for wrong in c.wrong:
            print(f"    WRONG: {wrong}")
    worst = max((Latencies.of(c.lags).p99_ms for c in results if c.lags), default=float("nan"))
    print(
        f"\n  release -> visible: ReleaseHold answered -> GetAvailability shows it (one poll's"
        f" resolution); commit -> on stream: the outbox row's commit time -> its message"
        f" read here from Redis; service p99: the bucket of the availability service's"
        f" commit -> applied histogram. Worst release -> visible p99 {worst:.2f} ms"
        f" (target < {LAG_P99_TARGET_MS:g} ms)."
    )
    print(
        f"  after Stripe recovered: {recovery['expired_at_stripe']} of {recovery['sessions']}"
        f" sessions expired at Stripe within {recovery['seconds_after_recovery']} s\n"
    )
    return {
        "bench": "stripe_lag",
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "options": {
            "rounds": options.rounds,
            "warmup": options.warmup,
            "interval_ms": options.interval_ms,
            "slow_seconds": options.slow_seconds,
        },
        "conditions": {c.name: c.figures() for c in results},
        "recovery": recovery,
    }


def parse(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="a Postgres server to make a database on")
    parser.add_argument("--redis-url")
    parser.add_argument("--rounds", type=int, default=200, help="per condition")
    parser.add_argument("--warmup", type=int, default=20, help="rounds first, not counted")
    parser.add_argument("--interval-ms", type=float, default=50.0, help="between round starts")
    parser.add_argument("--slow-seconds", type=float, default=10.0)
    parser.add_argument("--keep-logs", action="store_true", help="print where the logs are")
    args = parser.parse_args(argv)
    database_url, redis_url = engine_urls(args.database_url, args.redis_url)
    return Options(
        database_url,
        redis_url,
        args.rounds,
        args.warmup,
        args.interval_ms,
        args.slow_seconds,
        args.keep_logs,
    )


def main(argv: Sequence[str] | None = None) -> int:
    options = parse(argv)
    # Going down drops the fake Stripe's requests in flight; uvicorn logs each.
    logging.getLogger("uvicorn.error").disabled = True
    logs = Path(tempfile.mkdtemp(prefix="hf-stripe-lag-"))
    try:
        results, recovery = asyncio.run(measure(options, logs))
    finally:
        if options.keep_logs:
            print(f"service logs in {logs}", file=sys.stderr)
        else:
            shutil.rmtree(logs, ignore_errors=True)
    figures = report(options, results, recovery)
    print(json.dumps(figures))
    return 1 if any(c.wrong for c in results) else 0


if __name__ == "__main__":
    sys.exit(main())
