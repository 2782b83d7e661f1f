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
import math
import os
import platform
import secrets
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import grpc
import httpx

from bench.availability import Metrics, Samples, phase_figures
from bench.holds import (
    CALL_TIMEOUT_SECONDS,
    CONNECT_TIMEOUT_SECONDS,
    OK,
    HoldCall,
    Phase,
    ServiceClient,
    keep_busy,
    outcome_of_status,
)
from bench.stats import Latencies
from devtools.fakestripe.account import CUSTOMER_NAME, DEFAULT_CUSTOMER_EMAIL
from devtools.fakestripe.config import API_VERSION, DEFAULT_WEBHOOK_SECRET
from devtools.fakestripe.delivery import USER_AGENT
from devtools.fakestripe.events import build_event, payload
from devtools.fakestripe.objects import build, new_id, new_session_id
from devtools.fakestripe.signing import signature_header
from holdfast.contracts.booking.v1 import booking_pb2
from holdfast.platform.grpc_errors import details_of

EVENT_TYPE = "checkout.session.completed"
SECRETS_ENV = "HOLDFAST_STRIPE_WEBHOOK_SECRETS"
DEFAULT_WEBHOOKS_URL = "http://localhost:8081/stripe/webhook"
# The price bench.holds.ServiceClient.resource gives every slot.
PRICE_MINOR, CURRENCY = 1000, "eur"
# A copy of a stored event answered 200 but not as a duplicate.
STORED_AGAIN = "STORED_AGAIN"

ACK_P99_TARGET_MS = 50.0
# Failed deliveries are sent again after the phase, as Stripe would.
REDELIVERY_ATTEMPTS = 3
REDELIVERY_BACKOFF_SECONDS = 0.5
HTTP_TIMEOUT_SECONDS = 10.0  # Stripe's own: a slower answer is a failed delivery
CLOCK_SAMPLES = 9

ACK_METRIC = "holdfast_webhook_ack_seconds"
PROCESSING_METRIC = "holdfast_webhook_processing_seconds"
PROCESSED_METRIC = "holdfast_webhook_events_processed_total"
# After the duplicates, before looking: the processor looks for due events
# at least every second (by default), so it would have done something wrong.
DUPLICATE_SETTLE_SECONDS = 2.0


# --- Stripe's side: events and their delivery -----------------------------------


def completed_event(hold_id: str, tenant: str, created: int) -> tuple[dict[str, Any], str]:
    """A `checkout.session.completed` event for a card payment of `hold_id`,
    shaped like the fake Stripe's (hence Stripe's), with the metadata the
    booking service puts on its sessions; and its payment intent id."""
    intent = new_id("pi")
    # As the fake Stripe's `pay` fills it in.
    customer = {
        "address": build("charge")["billing_details"]["address"],
        "business_name": None,
        "email": DEFAULT_CUSTOMER_EMAIL,
        "individual_name": None,
        "name": CUSTOMER_NAME,
        "phone": None,
        "tax_exempt": "none",
        "tax_ids": [],
    }
    session = build(
        "checkout.session",
        id=new_session_id(),
        amount_subtotal=PRICE_MINOR,
        amount_total=PRICE_MINOR,
        cancel_url=f"https://bench.invalid/cancelled/{hold_id}",
        client_reference_id=hold_id,
        created=created - 90,
        currency=CURRENCY,
        customer_details=customer,
        expires_at=created + 1710,
        metadata={"hold_id": hold_id, "tenant_id": tenant, "attempt": "1", "traceparent": ""},
        mode="payment",
        payment_intent=intent,
        payment_method_types=["card"],
        payment_status="paid",
        status="complete",
        success_url=f"https://bench.invalid/paid/{hold_id}",
        url=None,
    )
    event = build_event(
        EVENT_TYPE, session, created=created, api_version=API_VERSION, pending_webhooks=1
    )
    return event, intent


@dataclass(frozen=True)
class Answer:
    """How one delivery went: OK, HTTP <code> or the client's error; when it was
    sent (client wall clock), how long the answer took, and for a 200 whether
    the receiver called it a duplicate."""

    outcome: str
    sent_at: float
    seconds: float
    duplicate: bool | None = None
    detail: str = ""


@dataclass
class Delivery:
    hold_id: str
    event_id: str
    payment_ref: str
    body: bytes
    answers: list[Answer] = field(default_factory=list)

    @property
    def delivered(self) -> bool:
        return bool(self.answers) and self.answers[-1].outcome == OK


class Receiver:
    """POSTs signed bodies to the webhook endpoint as Stripe does: Stripe's
    headers, a fresh timestamp and signature on every attempt, over
    keep-alive HTTP/1.1 connections.

    One httpx client per connection, each taken by one delivery at a time:
    one client's pool shared by 32 requests in flight cost ~2.5 ms of CPU per
    request (its bookkeeping grows with the requests waiting on it) against
    ~0.8 ms with a client each, and the bench, not the receiver, set the pace.
    """

    def __init__(self, url: str, secret: str, connections: int) -> None:
        self.url = url
        self.secret = secret
        self._idle = [self._client() for _ in range(connections)]
        self._all = list(self._idle)

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=HTTP_TIMEOUT_SECONDS,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": USER_AGENT,
                "Accept": "*/*; q=0.5, application/xml",
                "Cache-Control": "no-cache",
            },
        )

    async def post(self, body: bytes) -> Answer:
        if not self._idle:  # more deliveries at once than connections: one more
            self._all.append(self._client())
            self._idle.append(self._all[-1])
        client = self._idle.pop()
        try:
            return await self._post(client, body)
        finally:
            self._idle.append(client)

    async def _post(self, client: httpx.AsyncClient, body: bytes) -> Answer:
        headers = {"Stripe-Signature": signature_header(body, self.secret)}
        sent_at, started = time.time(), time.perf_counter()
        try:
            response = await client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as error:
            seconds = time.perf_counter() - started
            return Answer(type(error).__name__, sent_at, seconds, detail=str(error)[:200])
        seconds = time.perf_counter() - started
        if response.status_code != 200:
            return Answer(
                f"HTTP {response.status_code}", sent_at, seconds, detail=response.text[:200]
            )
        try:
            duplicate = bool(response.json()["duplicate"])
        except (ValueError, KeyError, TypeError):
            return Answer("BAD_ANSWER", sent_at, seconds, detail=response.text[:200])
        return Answer(OK, sent_at, seconds, duplicate)

    async def close(self) -> None:
        await asyncio.gather(*(client.aclose() for client in self._all))


def examples(answers: Sequence[Answer]) -> dict[str, str]:
    """One detail per kind of failed answer, for the report."""
    found: dict[str, str] = {}
    for answer in answers:
        if answer.outcome != OK:
            found.setdefault(answer.outcome, answer.detail)
    return found


async def deliver(
    label: str, receiver: Receiver, deliveries: Sequence[Delivery], concurrency: int
) -> Phase:
    """Every delivery once, `concurrency` at a time; answers kept on each."""

    async def call(i: int) -> str:
        answer = await receiver.post(deliveries[i].body)
        deliveries[i].answers.append(answer)
        return answer.outcome

    return await keep_busy(label, call, concurrency, len(deliveries), None)


async def redeliver(receiver: Receiver, deliveries: Sequence[Delivery], concurrency: int) -> int:
    """Sends failed deliveries again with backoff, like Stripe; how many needed it."""
    failed = [d for d in deliveries if not d.delivered]
    for attempt in range(REDELIVERY_ATTEMPTS):
        pending = [d for d in failed if not d.delivered]
        if not pending:
            break
        await asyncio.sleep(REDELIVERY_BACKOFF_SECONDS * 2**attempt)
        await deliver("redelivery", receiver, pending, concurrency)
    return len(failed)


# --- the booking service: setup ------------------------------------------------


class BookingClient(ServiceClient):
    def hold_maker(self, resource_id: str, slot_ids: Sequence[str], made: list[str]) -> HoldCall:
        """A call that holds one unit of slot `i mod len(slot_ids)` and puts the
        hold's id at `made[i]`."""
        stubs = self._booking

        async def hold(i: int) -> str:
            try:
                response = await stubs[i % len(stubs)].CreateHold(
                    booking_pb2.CreateHoldRequest(
                        resource_id=resource_id,
                        slot_ids=[slot_ids[i % len(slot_ids)]],
                        quantity=1,
                        customer_ref="bench-webhooks",
                    ),
                    metadata=self.metadata,
                    timeout=CALL_TIMEOUT_SECONDS,
                )
            except grpc.aio.AioRpcError as error:
                details = details_of(error)
                return outcome_of_status(details.code, details.reason)
            made[i] = response.hold.hold_id
            return OK

        return hold


async def make_holds(client: BookingClient, options: Options) -> list[str] | None:
    """One hold per event (warm-up included), spread over --slots slots."""
    count = options.events + options.warmup
    slots = min(options.slots, count)
    capacity = math.ceil(count / slots)
    resource_id = await client.resource(capacity)
    slot_ids = await client.slots(resource_id, slots, capacity)
    made = [""] * count
    phase = await keep_busy(
        "setup", client.hold_maker(resource_id, slot_ids, made), options.concurrency, count, None
    )
    if phase.ok != count:
        others = ", ".join(f"{k} {v}" for k, v in phase.outcomes.items() if k != OK)
        print(f"setup: only {phase.ok} of {count} holds were made ({others})", file=sys.stderr)
        return None
    return made


def prepare_deliveries(hold_ids: Sequence[str], tenant: str) -> list[Delivery]:
    """The events' bodies, built (and their JSON written) before anything is timed."""
    created = int(time.time())
    deliveries = []
    for hold_id in hold_ids:
        event, intent = completed_event(hold_id, tenant, created)
        deliveries.append(Delivery(hold_id, event["id"], intent, payload(event)))
    return deliveries


# --- Postgres: clock, inbox, holds ------------------------------------------------


@dataclass(frozen=True)
class Clock:
    """Postgres' clock minus the client's, and how closely that is known."""

    offset: float
    uncertainty: float


async def measure_clock(conn: asyncpg.Connection) -> Clock:
    """The offset from the quickest of a few round trips, read at its middle."""
    samples = []
    for _ in range(CLOCK_SAMPLES):
        before = time.time()
        server: float = await conn.fetchval("SELECT extract(epoch FROM clock_timestamp())::float8")
        after = time.time()
        samples.append((after - before, server - (before + after) / 2))
    rtt, offset = min(samples)
    return Clock(offset, rtt / 2)


async def wait_processed(
    conn: asyncpg.Connection, event_ids: Sequence[str], within: float, poll: float
) -> bool:
    """Until every event is stored and applied (or dead-lettered); False on timeout."""
    deadline = time.monotonic() + within
    while True:
        done = await conn.fetchval(
            """
            SELECT count(*) FROM stripe_events
            WHERE event_id = ANY($1::text[]) AND status IN ('APPLIED', 'IGNORED', 'DEAD')
            """,
            list(event_ids),
            timeout=CALL_TIMEOUT_SECONDS,
        )
        if done == len(event_ids):
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(poll)


@dataclass
class Ledger:
    """What Postgres holds for the run: the inbox rows of its events, and the
    tenant's holds with their confirmations (audit rows)."""

    events: dict[str, asyncpg.Record]
    holds: dict[str, asyncpg.Record]
    confirmations: dict[str, asyncpg.Record]

    @classmethod
    async def read(cls, conn: asyncpg.Connection, tenant: str, event_ids: Sequence[str]) -> Ledger:
        events = await conn.fetch(
            """
            SELECT event_id, status, outcome, attempts,
                   extract(epoch FROM received_at)::float8 AS received,
                   extract(epoch FROM processed_at)::float8 AS claimed
            FROM stripe_events WHERE event_id = ANY($1::text[])
            """,
            list(event_ids),
            timeout=CALL_TIMEOUT_SECONDS,
        )
        holds = await conn.fetch(
            "SELECT id::text AS id, status, payment_ref FROM holds WHERE tenant_id = $1",
            tenant,
            timeout=CALL_TIMEOUT_SECONDS,
        )
        confirmations = await conn.fetch(
            """
            SELECT entity_id::text AS hold_id, count(*) AS rows,
                   extract(epoch FROM min(created_at))::float8 AS confirmed
            FROM audit_log WHERE tenant_id = $1 AND action = 'hold.confirmed'
            GROUP BY entity_id
            """,
            tenant,
            timeout=CALL_TIMEOUT_SECONDS,
        )
        return cls(
            {r["event_id"]: r for r in events},
            {r["id"]: r for r in holds},
            {r["hold_id"]: r for r in confirmations},
        )

    @property
    def confirmation_rows(self) -> int:
        return sum(r["rows"] for r in self.confirmations.values())

    def problems(self, deliveries: Sequence[Delivery]) -> list[str]:
        """Every hold CONFIRMED once, by its event's payment; every event applied."""
        found: list[str] = []
        if len(self.holds) != len(deliveries):
            found.append(f"the tenant has {len(self.holds)} holds, not {len(deliveries)}")
        for d in deliveries:
            hold = self.holds.get(d.hold_id)
            confirmed = self.confirmations.get(d.hold_id)
            event = self.events.get(d.event_id)
            if event is None:
                found.append(f"event {d.event_id} (hold {d.hold_id}) was never stored")
            elif (event["status"], event["outcome"]) != ("APPLIED", "confirmed"):
                found.append(f"event {d.event_id}: {event['status']} {event['outcome']!r}")
            if hold is None or hold["status"] != "CONFIRMED":
                found.append(f"hold {d.hold_id} is {hold['status'] if hold else 'missing'}")
            elif hold["payment_ref"] != d.payment_ref:
                found.append(f"hold {d.hold_id} was paid by {hold['payment_ref']}")
            if confirmed is None or confirmed["rows"] != 1:
                rows = confirmed["rows"] if confirmed else 0
                found.append(f"hold {d.hold_id} was confirmed {rows} times")
        return found


@dataclass
class Timings:
    """Per event, in seconds on the client's clock: first send -> stored ->
    claimed by a processor worker -> confirmed by the booking service."""

    to_confirmed: list[float] = field(default_factory=list)
    to_stored: list[float] = field(default_factory=list)
    queued: list[float] = field(default_factory=list)
    applying: list[float] = field(default_factory=list)
    first_sent: float = math.nan
    last_answered: float = math.nan  # the acknowledgement phase's end
    last_confirmed: float = math.nan
    # Confirmed before the last delivery was answered.
    confirmed_while_delivering: int = 0

    @classmethod
    def of(cls, deliveries: Sequence[Delivery], ledger: Ledger, clock: Clock) -> Timings:
        timings = cls()
        sent_times, answered_times, confirmed_times = [], [], []
        for d in deliveries:
            event = ledger.events.get(d.event_id)
            confirmed = ledger.confirmations.get(d.hold_id)
            if not d.answers or event is None or confirmed is None:
                continue
            sent = d.answers[0].sent_at
            answered_times.append(sent + d.answers[0].seconds)
            received = event["received"] - clock.offset
            done = confirmed["confirmed"] - clock.offset
            sent_times.append(sent)
            confirmed_times.append(done)
            timings.to_confirmed.append(done - sent)
            timings.to_stored.append(received - sent)
            if event["claimed"] is not None:
                claimed = event["claimed"] - clock.offset
                timings.queued.append(claimed - received)
                timings.applying.append(done - claimed)
        if sent_times:
            timings.first_sent, timings.last_confirmed = min(sent_times), max(confirmed_times)
            timings.last_answered = max(answered_times)
            timings.confirmed_while_delivering = sum(
                1 for done in confirmed_times if done <= timings.last_answered
            )
        return timings

    @property
    def span(self) -> float:
        """First send to last confirmation."""
        return self.last_confirmed - self.first_sent

    @property
    def rates(self) -> tuple[float, float]:
        """Confirmations per second while deliveries came, and after."""
        during = self.last_answered - self.first_sent
        after = self.last_confirmed - self.last_answered
        rest = len(self.to_confirmed) - self.confirmed_while_delivering
        return (
            self.confirmed_while_delivering / during if during > 0 else math.nan,
            rest / after if after > 0 and rest else math.nan,
        )

    def figures(self) -> dict[str, Any]:
        def summary(seconds: list[float]) -> dict[str, float]:
            return {k: round(v, 3) for k, v in asdict(Latencies.of(seconds)).items()}

        span = self.span if self.to_confirmed else math.nan
        during, after = self.rates
        return {
            **summary(self.to_confirmed),
            "confirmed_per_s": round(len(self.to_confirmed) / span, 1) if span > 0 else None,
            "first_send_to_last_confirmed_s": round(span, 3) if self.to_confirmed else None,
            "confirmed_while_delivering": self.confirmed_while_delivering,
            "confirmed_per_s_while_delivering": round(during, 1),
            "confirmed_per_s_after": round(after, 1),
            "send_to_stored": summary(self.to_stored),
            "stored_to_claimed": summary(self.queued),
            "claimed_to_confirmed": summary(self.applying),
        }


# --- other processes' CPU, from /proc ---------------------------------------------


def _cpu_seconds(pids: Sequence[int]) -> float | None:
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / os.sysconf("SC_CLK_TCK")


class CpuWatch:
    """CPU seconds of named processes (--pid LABEL=PID[,PID...]) over stretches."""

    def __init__(self, pids: dict[str, list[int]]) -> None:
        self.pids = pids
        self._marks: dict[str, tuple[float, dict[str, float | None]]] = {}

    def mark(self, name: str) -> None:
        cpu = {label: _cpu_seconds(p) for label, p in self.pids.items()}
        self._marks[name] = (time.perf_counter(), cpu)

    def between(self, start: str, end: str) -> dict[str, float | None]:
        """Each process's share of one core from mark `start` to `end`."""
        (t0, a), (t1, b) = self._marks[start], self._marks[end]
        shares: dict[str, float | None] = {}
        for label in self.pids:
            used, before = b[label], a[label]
            if used is None or before is None or t1 <= t0:
                shares[label] = None
            else:
                shares[label] = round((used - before) / (t1 - t0), 3)
        return shares


# --- the webhook service's /metrics ---------------------------------------------------


def histogram(delta: Samples, name: str) -> dict[str, Any]:
    """Count and mean of a histogram's observations over all its labels."""
    count = sum(v for k, v in delta.items() if k.startswith(f"{name}_count"))
    total = sum(v for k, v in delta.items() if k.startswith(f"{name}_sum"))
    return {
        "count": round(count),
        "mean_ms": round(total / count * 1000, 3) if count else None,
    }


def service_figures(delta: Samples) -> dict[str, Any]:
    processed: Counter[str] = Counter()
    for key, value in delta.items():
        if key.startswith(f"{PROCESSED_METRIC}{{"):
            labels = dict(
                part.split("=", 1) for part in key[len(PROCESSED_METRIC) + 1 : -1].split(",")
            )
            processed[labels.get("status", "?")] += round(value)
    return {
        "ack": histogram(delta, ACK_METRIC),
        "processing": histogram(delta, PROCESSING_METRIC),
        "processed": dict(sorted(processed.items())),
        "retries": round(delta.get("holdfast_webhook_retries_total", 0.0)),
        "dead_letters": round(delta.get("holdfast_webhook_dead_letters_total", 0.0)),
    }


# --- the benchmark -------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    booking_target: str
    webhooks_url: str
    database_url: str
    secret: str
    webhooks_metrics: str | None
    channels: int
    concurrency: int
    events: int
    warmup: int
    slots: int
    duplicate_events: int
    duplicate_copies: int
    drain_timeout: float
    poll_ms: float
    pids: dict[str, list[int]]


@dataclass
class Results:
    body_bytes: int
    clock: Clock
    ack: Phase
    redelivered: int
    drained: bool
    drain_seconds: float
    timings: Timings
    event_statuses: Counter[str]
    retried_events: int
    problems: list[str]
    duplicates: Phase
    duplicate_answers: Counter[str]
    duplicate_problems: list[str]
    failures: dict[str, str]
    duplicate_failures: dict[str, str]
    cpu_ack: dict[str, float | None]
    cpu_until_confirmed: dict[str, float | None]
    service_ack: dict[str, Any] | None
    service_until_confirmed: dict[str, Any] | None

    @property
    def ack_p99_ms(self) -> float:
        return Latencies.of(self.ack.latencies).p99_ms

    @property
    def passed(self) -> bool:
        return not self.problems and not self.duplicate_problems


async def duplicate_phase(
    receiver: Receiver,
    conn: asyncpg.Connection,
    tenant: str,
    all_deliveries: Sequence[Delivery],
    sample: Sequence[Delivery],
    options: Options,
    before: Ledger,
) -> tuple[Phase, Counter[str], list[str], dict[str, str]]:
    """Each sampled event `copies` times, its copies side by side in the queue
    (so in flight together); then nothing may have changed in Postgres."""
    copies = options.duplicate_copies
    answers: list[Answer] = []

    async def call(i: int) -> str:
        answer = await receiver.post(sample[i // copies].body)
        answers.append(answer)
        if answer.outcome == OK and not answer.duplicate:
            return STORED_AGAIN
        return answer.outcome

    phase = await keep_busy("duplicates", call, options.concurrency, len(sample) * copies, None)
    await asyncio.sleep(DUPLICATE_SETTLE_SECONDS)
    after = await Ledger.read(conn, tenant, [d.event_id for d in all_deliveries])
    # Only events already applied (or given up) before the copies were sent:
    # if the inbox never drained, the rest are still being applied.
    final = ("APPLIED", "IGNORED", "DEAD")
    settled = [
        d
        for d in all_deliveries
        if (row := before.events.get(d.event_id)) is not None and row["status"] in final
    ]

    def rows(ledger: Ledger) -> int:
        return sum(
            c["rows"] for d in settled if (c := ledger.confirmations.get(d.hold_id)) is not None
        )

    problems = []
    if rows(after) != rows(before):
        problems.append(
            f"the settled events' holds had {rows(before)} confirmations, now {rows(after)}"
        )
    changed = [
        d.event_id
        for d in settled
        if (row := after.events[d.event_id])["status"] != before.events[d.event_id]["status"]
        or row["attempts"] != before.events[d.event_id]["attempts"]
    ]
    if changed:
        problems.append(f"{len(changed)} events were applied again, e.g. {changed[0]}")
    not_duplicates = len(phase.latencies) - phase.ok
    if not_duplicates:
        problems.append(f"{not_duplicates} copies were not answered 200 as duplicates")
    return phase, Counter(phase.outcomes), problems, examples(answers)


def sample_of(deliveries: Sequence[Delivery], count: int) -> list[Delivery]:
    """`count` deliveries spread evenly over the run."""
    count = min(count, len(deliveries))
    return [deliveries[i * len(deliveries) // count] for i in range(count)] if count else []


async def measure(options: Options, tenant: str, conn: asyncpg.Connection) -> Results | None:
    client = BookingClient(options.booking_target, tenant, options.channels)
    receiver = Receiver(options.webhooks_url, options.secret, options.concurrency)
    metrics = Metrics(options.webhooks_metrics)
    cpu = CpuWatch(options.pids)
    try:
        try:
            await client.connect()
        except TimeoutError:
            print(f"no booking service answers at {options.booking_target}", file=sys.stderr)
            return None
        hold_ids = await make_holds(client, options)
        if hold_ids is None:
            return None
        clock = await measure_clock(conn)
        everything = prepare_deliveries(hold_ids, tenant)
        warmup, measured = everything[: options.warmup], everything[options.warmup :]

        # Warm-up: opens every connection, grows the pools, and proves the secret.
        if warmup:
            phase = await deliver("warm-up", receiver, warmup, options.concurrency)
            if not phase.ok:
                failures = examples([d.answers[-1] for d in warmup])
                print(
                    f"the webhook receiver at {options.webhooks_url} accepted no event"
                    " (a 400 about the signature means --secret is not one of its secrets):",
                    file=sys.stderr,
                )
                for outcome, detail in failures.items():
                    print(f"  {outcome}: {detail}", file=sys.stderr)
                return None
            await redeliver(receiver, warmup, options.concurrency)
            if not await wait_processed(
                conn, [d.event_id for d in warmup], options.drain_timeout, options.poll_ms / 1000
            ):
                print("warm-up: not every event was applied in time; going on", file=sys.stderr)

        metrics_before = await metrics.read()
        cpu.mark("start")
        ack = await deliver("acknowledgement", receiver, measured, options.concurrency)
        cpu.mark("acked")
        metrics_acked = await metrics.read()
        acked_at = time.perf_counter()
        failures = examples([d.answers[0] for d in measured])
        redelivered = await redeliver(receiver, measured, options.concurrency)
        if not any(d.delivered for d in measured):
            print(
                f"the webhook receiver at {options.webhooks_url} accepted no event:",
                file=sys.stderr,
            )
            for outcome, detail in failures.items():
                print(f"  {outcome}: {detail}", file=sys.stderr)
            return None
        drained = await wait_processed(
            conn, [d.event_id for d in measured], options.drain_timeout, options.poll_ms / 1000
        )
        drain_seconds = time.perf_counter() - acked_at
        cpu.mark("drained")
        metrics_drained = await metrics.read()

        ledger = await Ledger.read(conn, tenant, [d.event_id for d in everything])
        timings = Timings.of(measured, ledger, clock)
        measured_ids = {d.event_id for d in measured}
        statuses = Counter(
            f"{r['status']} {r['outcome']}".strip()
            for e, r in ledger.events.items()
            if e in measured_ids
        )
        retried = sum(
            1 for d in measured if (r := ledger.events.get(d.event_id)) and r["attempts"] > 1
        )
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

    service_ack = service_all = None
    if options.webhooks_metrics:
        service_ack = service_figures(Metrics.delta(metrics_before, metrics_acked))
        service_all = service_figures(Metrics.delta(metrics_before, metrics_drained))
    return Results(
        body_bytes=round(sum(len(d.body) for d in measured) / max(1, len(measured))),
        clock=clock,
        ack=ack,
        redelivered=redelivered,
        drained=drained,
        drain_seconds=drain_seconds,
        timings=timings,
        event_statuses=statuses,
        retried_events=retried,
        problems=problems,
        duplicates=duplicates,
        duplicate_answers=duplicate_answers,
        duplicate_problems=duplicate_problems,
        failures=failures,
        duplicate_failures=duplicate_failures,
        cpu_ack=cpu.between("start", "acked") if options.pids else {},
        cpu_until_confirmed=cpu.between("start", "drained") if options.pids else {},
        service_ack=service_ack,
        service_until_confirmed=service_all,
    )


# --- output -------------------------------------------------------------------------


def _figures(phase: Phase) -> dict[str, Any]:
    figures = phase_figures(phase)
    del figures["rounds_per_s"]  # one round each here
    return figures


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _line(seconds: Sequence[float]) -> str:
    p = Latencies.of(seconds)
    return f"p50 {p.p50_ms:.1f}  p95 {p.p95_ms:.1f}  p99 {p.p99_ms:.1f}  max {p.max_ms:.1f} ms"


def _shares(shares: dict[str, float | None]) -> str:
    return "  ".join(
        f"{label} {share:.0%}" if share is not None else f"{label} ?"
        for label, share in shares.items()
    )


def report(options: Options, tenant: str, server_version: str, r: Results) -> dict[str, Any]:
    ack = r.ack
    non_200 = {k: v for k, v in sorted(ack.outcomes.items()) if k != OK}
    ack_cpu = ack.client_cpu_seconds / ack.wall_seconds if ack.wall_seconds else 0.0
    print(
        f"holdfast webhook benchmark  webhooks={options.webhooks_url}  "
        f"booking={options.booking_target}  tenant={tenant}\n"
        f"  {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"PostgreSQL {server_version}, httpx at concurrency {options.concurrency}\n"
        f"  {options.events} {EVENT_TYPE} events (+{options.warmup} warm-up), one per hold, "
        f"{r.body_bytes} bytes each, signed at send time\n"
        f"  clock: Postgres minus client {r.clock.offset * 1000:+.2f} ms "
        f"(+/- {r.clock.uncertainty * 1000:.2f} ms), taken off\n"
    )
    print(
        f"acknowledgement: {len(ack.latencies)} deliveries in {ack.wall_seconds:.2f} s: "
        f"{ack.throughput:.0f} acks/s, client cpu {ack_cpu:.0%}\n"
        f"  send -> HTTP answer: {_line(ack.latencies)}\n"
        f"  non-200: {sum(non_200.values())}"
        + (" (" + ", ".join(f"{k} {v}" for k, v in non_200.items()) + ")" if non_200 else "")
        + (f"; {r.redelivered} sent again afterwards" if r.redelivered else "")
    )
    for outcome, detail in r.failures.items():
        print(f"    {outcome}: {detail}")
    if r.service_ack:
        s = r.service_ack["ack"]
        print(f"  service side (its ack histogram): {s['count']} answers, mean {s['mean_ms']} ms")
    if r.cpu_ack:
        print(f"  cpu (share of one core): {_shares(r.cpu_ack)}")
    print(
        f"  target p99 < {ACK_P99_TARGET_MS:g} ms: {_verdict(r.ack_p99_ms < ACK_P99_TARGET_MS)}\n"
    )

    t = r.timings
    confirmed = len(t.to_confirmed)
    print(
        f"delivery -> confirmed: {confirmed} of {options.events} events, first send -> the "
        f"booking's confirm transaction (audit row), from Postgres"
    )
    if confirmed:
        print(
            f"  {_line(t.to_confirmed)}\n"
            f"    send -> stored (received_at)          {_line(t.to_stored)}\n"
            f"    stored -> claimed (processed_at)      {_line(t.queued)}\n"
            f"    claimed -> confirmed (ApplyPayment)   {_line(t.applying)}\n"
            f"  the last confirmed {t.span:.2f} s after the first send "
            f"({confirmed / t.span:.0f} confirmations/s): {t.confirmed_while_delivering} while "
            f"deliveries came ({t.rates[0]:.0f}/s), the rest in the "
            f"{t.last_confirmed - t.last_answered:.2f} s after the last answer "
            f"({t.rates[1]:.0f}/s)"
            + ("" if r.drained else f" -- NOT all within {options.drain_timeout:g} s")
        )
    print(
        "  events: "
        + ", ".join(f"{k} {v}" for k, v in sorted(r.event_statuses.items()))
        + f"; applied after a retry: {r.retried_events}"
    )
    if r.service_until_confirmed:
        s = r.service_until_confirmed
        print(
            f"  service side: {s['processing']['count']} attempts, mean "
            f"{s['processing']['mean_ms']} ms each; retries {s['retries']}, "
            f"dead letters {s['dead_letters']}"
        )
    if r.cpu_until_confirmed:
        print(f"  cpu until confirmed (share of one core): {_shares(r.cpu_until_confirmed)}")
    print()

    dup = r.duplicates
    if not dup.latencies:
        print("duplicates: none sent (--duplicate-events 0)")
    else:
        answers = ", ".join(
            f"{'200 duplicate' if k == OK else k} {v}"
            for k, v in sorted(r.duplicate_answers.items())
        )
        print(
            f"duplicates: {len(dup.latencies) // options.duplicate_copies} events "
            f"x {options.duplicate_copies} copies at once, concurrency {options.concurrency}\n"
            f"  answers: {answers}\n"
            f"  send -> HTTP answer: {_line(dup.latencies)}"
        )
    for outcome, detail in r.duplicate_failures.items():
        print(f"    {outcome}: {detail}")
    for problem in r.duplicate_problems:
        print(f"  WRONG: {problem}")
    print()

    holds = options.events + options.warmup
    print(
        f"every one of {holds} holds CONFIRMED exactly once by its event's payment, "
        f"before and after the duplicates: {'PASS' if r.passed else 'FAIL'}"
    )
    for problem in r.problems[:20]:
        print(f"  WRONG: {problem}")
    if len(r.problems) > 20:
        print(f"  ... and {len(r.problems) - 20} more")
    print()

    return {
        "bench": "webhooks",
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "webhooks_url": options.webhooks_url,
        "booking_target": options.booking_target,
        "tenant": tenant,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "postgres": server_version,
        },
        "options": asdict(options)
        | {"database_url": None, "secret": None, "pids": sorted(options.pids)},
        "body_bytes": r.body_bytes,
        "clock_offset_ms": round(r.clock.offset * 1000, 3),
        "clock_uncertainty_ms": round(r.clock.uncertainty * 1000, 3),
        "ack": {
            **_figures(ack),
            "non_200": sum(non_200.values()),
            "redelivered": r.redelivered,
            "failures": r.failures,
            "target_p99_ms": ACK_P99_TARGET_MS,
            "target_met": r.ack_p99_ms < ACK_P99_TARGET_MS,
            "service": r.service_ack,
            "cpu": r.cpu_ack or None,
        },
        "confirmed": {
            **t.figures(),
            "events": confirmed,
            "drained": r.drained,
            "drain_after_last_ack_s": round(r.drain_seconds, 3),
            "event_statuses": dict(sorted(r.event_statuses.items())),
            "applied_after_retry": r.retried_events,
            "service": r.service_until_confirmed,
            "cpu": r.cpu_until_confirmed or None,
        },
        "duplicates": {
            **_figures(dup),
            "events": len(dup.latencies) // max(1, options.duplicate_copies),
            "copies": options.duplicate_copies,
            "answers": dict(sorted(r.duplicate_answers.items())),
            "failures": r.duplicate_failures,
            "problems": r.duplicate_problems,
            "passed": not r.duplicate_problems,
        },
        "holds": holds,
        "problems": r.problems[:100],
        "passed": r.passed,
    }


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


def default_secret() -> str:
    """The first of the webhook service's own secrets, else the fake Stripe's."""
    configured = [s.strip() for s in os.environ.get(SECRETS_ENV, "").split(",") if s.strip()]
    return configured[0] if configured else DEFAULT_WEBHOOK_SECRET


def parse(argv: Sequence[str] | None = None) -> Options:
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
        help="report these local processes' CPU (repeatable), e.g. webhooks=1234",
    )
    parser.add_argument("--channels", type=int, default=4, help="gRPC channels for the setup")
    parser.add_argument("--concurrency", type=int, default=32, help="deliveries in flight")
    parser.add_argument("--events", type=int, default=2000, help="measured events (holds)")
    parser.add_argument(
        "--warmup", type=int, default=200, help="warm-up events first, on holds of their own"
    )
    parser.add_argument("--slots", type=int, default=500, help="slots the holds are spread over")
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
        pids=dict(args.pids),
    )


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(run(parse(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
