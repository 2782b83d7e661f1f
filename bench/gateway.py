"""The HTTP gateway under many users at once, against a running stack.

    python -m bench.gateway --gateway-url URL --database-url DSN \
        [--users 1000] [--seconds 30] [--think-ms 1000] [--pid gateway=PID ...]
        [--cached-seconds 5] [--cached-rounds 3] [--only-cached]

First, one resource's availability (the cached answer, ~2.5 kB of JSON) is
read by 64 connections as fast as they are answered, next to its ceiling: a
bare Starlette app on the same uvicorn settings answering the same bytes, in
a process of its own, in alternating rounds (bench.gateway_cached); then the
same GET with If-None-Match, answered 304 while nothing changes. wrk is the
client when installed, else a Python client (the report says which).

Then each simulated user loops, until the time is up: read its resource's
availability `--browse` times, take a hold of one place on one of its slots
(POST /v1/holds with an Idempotency-Key of its own), release it (DELETE
/v1/holds/{id}), with a think time between requests (uniform in 0.5x to 1.5x
--think-ms). Users start spread over --ramp-seconds; only requests started in
the --seconds after that count. A hold taken is always released, even after
the time is up.

Set-up: a fresh tenant `bench-xxxxxxxx` and one API key with every scope,
made in Postgres with holdfast.tenancy.keys.KeyRepository as `holdfast keys create`
does, with a per-key rate far above what the bench can send, so the per-key
limit never throttles it. The per-address limit counts each client address:
every user sends an X-Forwarded-For of its own (a 10.x.y.z address), which
the gateway's uvicorn believes from a loopback peer, as 1000 real users would
come from 1000 addresses (--one-address sends none: everything counts against
127.0.0.1). Resources and slots are made through the gateway's own admin
routes, far in the future.

Clients: one aiohttp session per --users-per-client users, with a
connection per user (a single client for everyone spends the bench's CPU on
its own pool bookkeeping, bench.webhooks found); aiohttp rather than httpx,
whose CPU per request made the bench its own bottleneck. The bench runs on uvloop.

Reported per route (GET availability, POST holds, DELETE holds) and overall:
p50/p95/p99/max latency as the client sees it, error rate, throughput, then
where the time goes: the gateway's own handling time per route and the
booking and availability services' own gRPC times (from their /metrics), the
availability cache's answers, and the CPU each process used (--pid; the
Postgres backends of the database are found by themselves). The design
target is p95 < 100 ms and errors < 0.1 %: reported as met or not, never
failed. Afterwards every hold must be released in Postgres, the slots' held
counts must agree, and the gateway's availability must come to show them.

The last line printed is one JSON object with every figure. Exit status 1
means a wrong answer (a 2xx whose body is not what was asked for) or the
state above disagreeing; 2 that the gateway or the database could not be
reached.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import time
from collections.abc import Sequence

import aiohttp
import asyncpg
import httpx
import uvloop

from bench.gateway_cached import Cached, measure_cached, print_cached
from bench.gateway_checks import Consistency, check_state
from bench.gateway_options import Options
from bench.gateway_report import report
from bench.gateway_results import Results
from bench.gateway_users import (
    Record,
    Resource,
    User,
    make_resources,
    make_tenant_and_key,
    new_client,
    new_user_session,
    route_figures,
)
from bench.gateway_window import ROUTES, Window

SETUP_TIMEOUT_SECONDS = 30.0


async def wait_ready(client: httpx.AsyncClient) -> str | None:
    """None once GET /readyz answers 200, else why not."""
    deadline = time.monotonic() + SETUP_TIMEOUT_SECONDS
    while True:
        try:
            answer = await client.get("/readyz")
            if answer.status_code == 200:
                return None
            why = f"/readyz answers {answer.status_code}: {answer.text[:200]}"
        except httpx.HTTPError as error:
            why = f"{type(error).__name__}: {error}"
        if time.monotonic() > deadline:
            return why
        await asyncio.sleep(0.5)


async def measure(options: Options) -> Results | Cached | int:
    tenant = f"bench-{secrets.token_hex(4)}"
    try:
        pool = await asyncpg.create_pool(options.database_url, min_size=1, max_size=2, timeout=10)
    except (OSError, asyncpg.PostgresError) as error:
        print(f"cannot reach the database: {error}", file=sys.stderr)
        return 2
    assert pool is not None
    setup: httpx.AsyncClient | None = None
    sessions: list[aiohttp.ClientSession] = []
    try:
        key = await make_tenant_and_key(pool, tenant)
        setup = new_client(options, key, 4)
        why = await wait_ready(setup)
        if why is not None:
            print(f"the gateway at {options.gateway_url} is not ready: {why}", file=sys.stderr)
            return 2
        resources = await make_resources(setup, options)
        cached = await measure_cached(setup, key, resources[0].id, resources[0].window, options)
        if options.only_cached:
            return cached
        record = Record()
        users = _users(options, key, resources, record, sessions)
        window = Window(options)
        begin = time.perf_counter() + 0.1
        measured_from = begin + options.ramp_seconds
        deadline = measured_from + options.seconds
        async with pool.acquire() as conn:

            async def observe() -> None:
                await asyncio.sleep(max(0.0, measured_from - time.perf_counter()))
                await window.open(conn)
                await window.lag.run(deadline)
                await window.close(options.seconds)

            observer = asyncio.create_task(observe())
            await asyncio.gather(
                *(
                    user.run(begin + options.ramp_seconds * i / options.users, deadline)
                    for i, user in enumerate(users)
                )
            )
            await observer
            consistency = await check_state(conn, setup, tenant, resources, record)
            postgres: str = await conn.fetchval("SHOW server_version")
    finally:
        await asyncio.gather(*(session.close() for session in sessions))
        if setup is not None:
            await setup.aclose()
        await pool.close()
    results = _results(
        options,
        tenant,
        len(sessions),
        record,
        (measured_from, deadline),
        window,
        consistency,
        postgres,
    )
    results.cached = cached
    return results


def _users(
    options: Options,
    key: str,
    resources: Sequence[Resource],
    record: Record,
    sessions: list[aiohttp.ClientSession],
) -> list[User]:
    """The users, `users_per_client` of them to an aiohttp session (each
    added to `sessions`)."""
    per_client = options.users_per_client
    for first in range(0, options.users, per_client):
        sessions.append(new_user_session(options, key, min(per_client, options.users - first)))
    return [
        User(
            i,
            sessions[i // per_client],
            resources[i % len(resources)],
            options,
            record,
        )
        for i in range(options.users)
    ]


def _results(
    options: Options,
    tenant: str,
    clients: int,
    record: Record,
    measured: tuple[float, float],
    window: Window,
    consistency: Consistency,
    postgres: str,
) -> Results:
    """The figures of the calls started in the `measured` stretch."""
    measured_from, deadline = measured
    counted = [c for c in record.calls if measured_from <= c.started < deadline]
    routes = {
        route: route_figures(route, [c for c in counted if c.route == route], options.seconds)
        for route in ROUTES
    }
    return Results(
        tenant=tenant,
        clients=clients,
        measured_seconds=options.seconds,
        started_in_ramp=sum(1 for c in record.calls if c.started < measured_from),
        routes=routes,
        overall=route_figures("all", counted, options.seconds),
        window=window,
        consistency=consistency,
        record=record,
        postgres=postgres,
    )


async def run(options: Options) -> int:
    results = await measure(options)
    if isinstance(results, int):
        return results
    if isinstance(results, Cached):
        print(json.dumps(print_cached(results, options.cached_connections), separators=(",", ":")))
        return 0
    figures = report(options, results)
    print(json.dumps(figures, separators=(",", ":")))
    wrong = figures["wrong_answers"]
    if wrong or results.consistency.problems:
        print(
            f"wrong answers: {wrong}; problems after the run: {len(results.consistency.problems)}",
            file=sys.stderr,
        )
        return 1
    return 0


def _pid(text: str) -> tuple[str, list[int]]:
    label, _, pids = text.partition("=")
    try:
        return label, [int(p) for p in pids.split(",") if p]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not LABEL=PID[,PID...]") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.gateway", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    env = os.environ.get
    parser.add_argument(
        "--gateway-url",
        default=env("HOLDFAST_GATEWAY_URL", "http://127.0.0.1:8080"),
        help="default: $HOLDFAST_GATEWAY_URL",
    )
    parser.add_argument(
        "--database-url",
        default=env("HOLDFAST_DATABASE_URL"),
        help="the gateway's Postgres, for the bench's tenant and key (default:"
        " $HOLDFAST_DATABASE_URL)",
    )
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument(
        "--users-per-client", type=int, default=10, help="users sharing one aiohttp session"
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="measured time")
    parser.add_argument(
        "--ramp-seconds", type=float, default=5.0, help="users start spread over this, uncounted"
    )
    parser.add_argument(
        "--think-ms", type=float, default=1000.0, help="mean pause after each request (0: none)"
    )
    parser.add_argument("--browse", type=int, default=3, help="availability reads before each hold")
    parser.add_argument("--resources", type=int, default=20)
    parser.add_argument("--slots", type=int, default=24, help="slots per resource")
    parser.add_argument(
        "--one-address",
        action="store_true",
        help="send no X-Forwarded-For: every user counts against 127.0.0.1's rate limit",
    )
    parser.add_argument(
        "--gateway-metrics", help="default: the gateway's /metrics (--gateway-url + /metrics)"
    )
    parser.add_argument(
        "--booking-metrics",
        default=env("HOLDFAST_BOOKING_METRICS_URL"),
        help="the booking service's /metrics (default: $HOLDFAST_BOOKING_METRICS_URL)",
    )
    parser.add_argument(
        "--availability-metrics",
        default=env("HOLDFAST_AVAILABILITY_METRICS_URL"),
        help="the availability service's /metrics (default: $HOLDFAST_AVAILABILITY_METRICS_URL)",
    )
    parser.add_argument(
        "--pid",
        type=_pid,
        action="append",
        default=[],
        metavar="LABEL=PID[,PID]",
        help="report this process's CPU, e.g. gateway=1234; repeatable",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--cached-seconds", type=float, default=5.0, help="each round of the cached GET"
    )
    parser.add_argument("--cached-connections", type=int, default=64)
    parser.add_argument("--cached-rounds", type=int, default=3)
    parser.add_argument(
        "--only-cached", action="store_true", help="the cached GET next to its ceiling only"
    )
    return parser


def parse(argv: Sequence[str] | None = None) -> Options:
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("--database-url or HOLDFAST_DATABASE_URL is required")
    if args.users < 1 or args.users_per_client < 1 or args.resources < 1 or args.slots < 1:
        parser.error("--users, --users-per-client, --resources and --slots must be at least 1")
    if args.seconds <= 0 or args.ramp_seconds < 0 or args.think_ms < 0 or args.browse < 0:
        parser.error(
            "--seconds must be positive; --ramp-seconds, --think-ms, --browse not negative"
        )
    gateway_url = args.gateway_url.rstrip("/")
    return Options(
        gateway_url=gateway_url,
        database_url=args.database_url,
        users=args.users,
        users_per_client=args.users_per_client,
        seconds=args.seconds,
        ramp_seconds=args.ramp_seconds,
        think_ms=args.think_ms,
        browse=args.browse,
        resources=args.resources,
        slots=args.slots,
        one_address=args.one_address,
        gateway_metrics=args.gateway_metrics or f"{gateway_url}/metrics",
        booking_metrics=args.booking_metrics,
        availability_metrics=args.availability_metrics,
        pids=dict(args.pid),
        seed=args.seed,
        cached_seconds=args.cached_seconds,
        cached_connections=args.cached_connections,
        cached_rounds=args.cached_rounds,
        only_cached=args.only_cached,
    )


def main(argv: Sequence[str] | None = None) -> int:
    return uvloop.run(run(parse(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
