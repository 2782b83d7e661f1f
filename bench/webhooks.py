"""Webhook benchmarks against running booking and webhook services.

    python -m bench.webhooks --booking-target HOST:PORT --webhooks-url URL \
        --database-url DSN [--secret whsec_...] [--webhooks-metrics URL]

Setup goes through the booking service's gRPC API like any client, in a fresh
tenant `bench-xxxxxxxx` per run: one resource, its slots, and one hold per
event to pay. Then, as Stripe would, signed `checkout.session.completed`
events (Stripe's own object shapes, one distinct event and payment intent per
hold, signed at send time) are POSTed to the webhook receiver over HTTP/1.1
keep-alive connections at a fixed concurrency:

1. Acknowledgement: each delivery's time until the HTTP answer (the event is
   then stored in the inbox, nothing more). Target p99 < 50 ms.
2. Delivery -> confirmed: each event's time from its first send until the
   booking service confirmed its hold, read from Postgres after the run and
   set against the client's send times (the clock offset between the two is
   measured and taken off): the `hold.confirmed` audit row's time is that of
   the booking's confirm transaction; the event's `received_at` and
   `processed_at` (the processor's claim transaction began) split it into
   receipt, queue and apply. Nothing polls the services meanwhile; only one
   count query every --poll-ms waits for the inbox to drain.
3. Duplicates: a sample of the same events delivered again, several copies of
   each at once, after all were applied: every copy must be answered 200 as a
   duplicate, and no hold may be confirmed again.

Warm-up events on holds of their own come first (and are checked like the
rest). The last line printed is one JSON object with every figure. Exit
status 1 means a hold was not CONFIRMED exactly once by its event's payment,
or a duplicate was not answered as one; 2 that the services could not be
reached or refused the signature. Missed targets are reported, not failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import urllib.parse
from collections import Counter
from collections.abc import Sequence
from typing import Any

import asyncpg

from bench.grpc_load import CONNECT_TIMEOUT_SECONDS
from bench.metrics import Metrics
from bench.processes import CpuWatch, listening_pids
from bench.webhook_delivery import (
    BookingClient,
    Delivery,
    Receiver,
    deliver,
    make_holds,
    prepare_deliveries,
)
from bench.webhook_phases import Delivered, deliver_measured, duplicate_phase, sample_of, warm_up
from bench.webhook_timings import (
    Ledger,
    Timings,
    measure_clock,
    service_figures,
)
from bench.webhooks_ceiling import CeilingProcess
from bench.webhooks_options import Options
from bench.webhooks_report import report
from bench.webhooks_results import Results
from devtools.fakestripe.config import DEFAULT_WEBHOOK_SECRET

SECRETS_ENV = "HOLDFAST_STRIPE_WEBHOOK_SECRETS"
DEFAULT_WEBHOOKS_URL = "http://localhost:8081/stripe/webhook"


# --- the benchmark -------------------------------------------------------------------


def _statuses(ledger: Ledger, measured: Sequence[Delivery]) -> tuple[Counter[str], int]:
    """The measured events by status and outcome, and how many took a retry."""
    measured_ids = {d.event_id for d in measured}
    statuses = Counter(
        f"{r['status']} {r['outcome']}".strip()
        for e, r in ledger.events.items()
        if e in measured_ids
    )
    retried = sum(1 for d in measured if (r := ledger.events.get(d.event_id)) and r["attempts"] > 1)
    return statuses, retried


async def _holds(options: Options, client: BookingClient) -> list[str] | None:
    """The holds the events pay for; None if the booking service cannot be
    reached or made none."""
    try:
        await client.connect()
    except TimeoutError:
        print(f"no booking service answers at {options.booking_target}", file=sys.stderr)
        return None
    return await make_holds(client, options)


def _service(
    options: Options, delivered: Delivered
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """What the webhook service counted until acknowledged and until drained."""
    if not options.webhooks_metrics:
        return None, None
    before, acked, drained = delivered.samples
    return (
        service_figures(Metrics.delta(before, acked)),
        service_figures(Metrics.delta(before, drained)),
    )


async def measure(options: Options, tenant: str, conn: asyncpg.Connection) -> Results | None:
    client = BookingClient(options.booking_target, tenant, options.channels)
    receiver = Receiver(options.webhooks_url, options.secret, options.concurrency)
    metrics = Metrics(options.webhooks_metrics)
    cpu = CpuWatch(options.pids)
    top = CeilingProcess.start(options.secret) if options.ceiling else None
    ceiling = Receiver(top.url, options.secret, options.concurrency) if top else None
    try:
        hold_ids = await _holds(options, client)
        if hold_ids is None:
            return None
        clock = await measure_clock(conn)
        everything = prepare_deliveries(hold_ids, tenant)
        warmup, measured = everything[: options.warmup], everything[options.warmup :]

        # Warm-up: opens every connection, grows the pools, and proves the secret.
        if warmup and not await warm_up(options, receiver, conn, warmup):
            return None
        if ceiling is not None:  # its connections opened, its code warmed up too
            await deliver("ceiling warm-up", ceiling, warmup, options.concurrency)
        delivered = await deliver_measured(
            options, receiver, conn, measured, metrics, cpu, ceiling, top.pid if top else None
        )
        if delivered is None:
            return None
        ledger = await Ledger.read(conn, tenant, [d.event_id for d in everything])
        timings = Timings.of(measured, ledger, clock)
        statuses, retried = _statuses(ledger, measured)
        problems = ledger.problems(everything)

        sample = sample_of(measured, options.duplicate_events)
        (
            duplicates,
            duplicate_answers,
            duplicate_problems,
            duplicate_failures,
        ) = await duplicate_phase(receiver, conn, tenant, everything, sample, options, ledger)
    finally:
        await receiver.close()
        await client.close()
        if ceiling is not None:
            await ceiling.close()
        if top is not None:
            top.stop()

    service_ack, service_all = _service(options, delivered)
    return Results(
        body_bytes=round(sum(len(d.body) for d in measured) / max(1, len(measured))),
        clock=clock,
        ack=delivered.ack,
        service_side=delivered.service,
        ceiling=delivered.ceiling,
        redelivered=delivered.redelivered,
        drained=delivered.drained,
        drain_seconds=delivered.drain_seconds,
        timings=timings,
        event_statuses=statuses,
        retried_events=retried,
        problems=problems,
        duplicates=duplicates,
        duplicate_answers=duplicate_answers,
        duplicate_problems=duplicate_problems,
        failures=delivered.failures,
        duplicate_failures=duplicate_failures,
        cpu_ack=cpu.between("start", "acked") if options.pids else {},
        cpu_until_confirmed=cpu.between("start", "drained") if options.pids else {},
        service_ack=service_ack,
        service_until_confirmed=service_all,
    )


async def run(options: Options) -> int:
    tenant = f"bench-{secrets.token_hex(4)}"
    try:
        conn = await asyncpg.connect(options.database_url, timeout=CONNECT_TIMEOUT_SECONDS)
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        print(f"cannot reach Postgres: {error}", file=sys.stderr)
        return 2
    try:
        server_version: str = await conn.fetchval("SHOW server_version")
        results = await measure(options, tenant, conn)
    finally:
        await conn.close()
    if results is None:
        return 2
    figures = report(options, tenant, server_version, results)
    print(json.dumps(figures, separators=(",", ":")))
    if not results.passed:
        print(
            f"{len(results.problems) + len(results.duplicate_problems)} holds or events wrong",
            file=sys.stderr,
        )
        return 1
    return 0


def _pids(value: str) -> tuple[str, list[int]]:
    label, _, pids = value.partition("=")
    try:
        numbers = [int(p) for p in pids.split(",") if p.strip()]
    except ValueError:
        numbers = []
    if not label or not numbers:
        raise argparse.ArgumentTypeError("expected LABEL=PID[,PID...]")
    return label, numbers


def _receiver_pids(url: str) -> dict[str, list[int]]:
    """The local processes listening on the receiver's port (every worker)."""
    port = urllib.parse.urlsplit(url).port
    pids = listening_pids(port) if port else []
    return {"webhooks": pids} if pids else {}


def default_secret() -> str:
    """The first of the webhook service's own secrets, else the fake Stripe's."""
    configured = [s.strip() for s in os.environ.get(SECRETS_ENV, "").split(",") if s.strip()]
    return configured[0] if configured else DEFAULT_WEBHOOK_SECRET


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.webhooks",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument(
        "--booking-target", default="localhost:50051", help="booking gRPC address (setup)"
    )
    parser.add_argument(
        "--webhooks-url", default=DEFAULT_WEBHOOKS_URL, help="the receiver Stripe posts to"
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("HOLDFAST_DATABASE_URL"),
        help="the services' Postgres, read after the run (default: $HOLDFAST_DATABASE_URL)",
    )
    parser.add_argument(
        "--secret",
        default=None,
        help=f"signing secret (default: the first of ${SECRETS_ENV}, "
        f"else the fake Stripe's {DEFAULT_WEBHOOK_SECRET})",
    )
    parser.add_argument(
        "--webhooks-metrics",
        default=None,
        metavar="URL",
        help="the webhook service's /metrics, e.g. http://localhost:9103/metrics",
    )
    parser.add_argument(
        "--pid",
        dest="pids",
        type=_pids,
        action="append",
        default=[],
        metavar="LABEL=PID[,PID...]",
        help="report these local processes' CPU (repeatable), e.g. webhooks=1234 "
        "(default: what listens on the receiver's port)",
    )
    parser.add_argument("--channels", type=int, default=4, help="gRPC channels for the setup")
    parser.add_argument("--concurrency", type=int, default=32, help="deliveries in flight")
    parser.add_argument("--events", type=int, default=2000, help="measured events (holds)")
    parser.add_argument(
        "--warmup", type=int, default=200, help="warm-up events first, on holds of their own"
    )
    parser.add_argument("--slots", type=int, default=500, help="slots the holds are spread over")
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="alternating rounds of the receiver and its ceiling, each a share of --events",
    )
    parser.add_argument(
        "--no-ceiling", action="store_true", help="skip the ceiling (a bare verify-and-answer app)"
    )
    parser.add_argument("--duplicate-events", type=int, default=200, help="events delivered again")
    parser.add_argument("--duplicate-copies", type=int, default=3, help="copies of each, at once")
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=120.0,
        help="seconds to wait for every event to be applied",
    )
    parser.add_argument(
        "--poll-ms", type=float, default=200.0, help="how often to count the applied events"
    )
    return parser


def parse(argv: Sequence[str] | None = None) -> Options:
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("--database-url or HOLDFAST_DATABASE_URL is required")
    if args.events < 1 or args.concurrency < 1 or args.slots < 1:
        parser.error("--events, --concurrency and --slots must be positive")
    return Options(
        booking_target=args.booking_target,
        webhooks_url=args.webhooks_url,
        database_url=args.database_url,
        secret=args.secret or default_secret(),
        webhooks_metrics=args.webhooks_metrics,
        channels=max(1, args.channels),
        concurrency=args.concurrency,
        events=args.events,
        warmup=max(0, args.warmup),
        slots=args.slots,
        duplicate_events=max(0, args.duplicate_events),
        duplicate_copies=max(1, args.duplicate_copies),
        drain_timeout=args.drain_timeout,
        poll_ms=args.poll_ms,
        pids=dict(args.pids) or _receiver_pids(args.webhooks_url),
        rounds=max(1, args.rounds),
        ceiling=not args.no_ceiling,
    )


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(run(parse(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
