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
import platform
import secrets
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bench.holds import (
    BASE_TIME,
    CALL_TIMEOUT_SECONDS,
    OK,
    Channels,
    HoldCall,
    Phase,
    ServiceClient,
    keep_busy,
    outcome_of_status,
)
from bench.stats import Latencies
from holdfast.contracts.availability.v1 import availability_pb2, availability_pb2_grpc
from holdfast.contracts.booking.v1 import booking_pb2, booking_pb2_grpc
from holdfast.platform.context import TENANT_ID_KEY
from holdfast.platform.grpc_errors import details_of
from holdfast.platform.proto_time import time_range
from services.availability.server import CACHE_HEALTH

WRONG = "WRONG"
# As in bench.holds: call number i, and how it went (OK, WRONG or CODE/REASON).
Call = HoldCall
ResourceAvailability = availability_pb2.ResourceAvailability

HIT_P99_TARGET_MS = 5.0
HIT_RATIO_TARGET = 0.5
LAG_P99_TARGET_MS = 50.0

METRICS_TIMEOUT_SECONDS = 5.0
CACHE_LIVE_WAIT_SECONDS = 15.0
LAG_METRIC = "holdfast_availability_invalidation_lag_seconds"
HITS_METRIC = "holdfast_availability_cache_hits_total"
MISSES_METRIC = "holdfast_availability_cache_misses_total"


# --- the availability service -------------------------------------------------


class AvailabilityClient(Channels):
    """Availability stubs over several channels for one tenant."""

    def __init__(self, target: str, tenant: str, channels: int) -> None:
        super().__init__(target, tenant, channels)
        self._stubs = [availability_pb2_grpc.AvailabilityServiceStub(c) for c in self._channels]
        self._health = health_pb2_grpc.HealthStub(self._channels[0])

    async def wait_until_cache_live(self, within: float) -> bool:
        """True once the service answers from its caches (its consumer is live);
        while degraded every answer comes from Postgres and hits are not hits."""
        request = health_pb2.HealthCheckRequest(service=CACHE_HEALTH)
        deadline = time.monotonic() + within
        while True:
            response = await self._health.Check(request, timeout=CALL_TIMEOUT_SECONDS)
            if response.status == health_pb2.HealthCheckResponse.SERVING:
                return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.1)

    async def get(
        self, resource_id: str, start: datetime, end: datetime, channel: int = 0
    ) -> ResourceAvailability:
        response = await self._stubs[channel % len(self._stubs)].GetAvailability(
            availability_pb2.GetAvailabilityRequest(
                resource_id=resource_id, time_range=time_range(start, end)
            ),
            metadata=self.metadata,
            timeout=CALL_TIMEOUT_SECONDS,
        )
        answer: ResourceAvailability = response.availability
        return answer

    def reader(
        self,
        resource_id: str,
        window: Callable[[int], tuple[datetime, datetime]],
        correct: Callable[[ResourceAvailability], bool],
    ) -> Call:
        """A call that asks for `window(i)` on channel `i mod n` and says
        OK, WRONG (the answer failed `correct`) or CODE/REASON."""

        async def read(i: int) -> str:
            try:
                answer = await self.get(resource_id, *window(i), channel=i)
            except grpc.aio.AioRpcError as error:
                details = details_of(error)
                return outcome_of_status(details.code, details.reason)
            return OK if correct(answer) else WRONG

        return read


def redis_getter(redis: Redis, key: str, value: bytes) -> Call:
    async def get(i: int) -> str:
        try:
            found = await redis.get(key)
        except RedisError as error:
            return f"REDIS/{type(error).__name__}"
        return OK if found == value else WRONG

    return get


# --- the services' /metrics ------------------------------------------------------

Samples = dict[str, float]


def _scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=METRICS_TIMEOUT_SECONDS) as response:
        text = response.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


class Metrics:
    """Differences of the availability service's counters around phases."""

    def __init__(self, url: str | None) -> None:
        self.url = url

    async def read(self) -> Samples:
        return await asyncio.to_thread(_scrape, self.url) if self.url else {}

    @staticmethod
    def delta(before: Samples, after: Samples) -> Samples:
        return {k: v - before.get(k, 0.0) for k, v in after.items() if v != before.get(k, 0.0)}


def cache_levels(delta: Samples) -> dict[str, int]:
    """The service's answers by where they came from: "local hit", "redis hit",
    "miss" (read from Postgres) or "degraded" (cache bypassed), per resource."""
    levels: dict[str, int] = {}
    for name, value in delta.items():
        if name.startswith(f"{HITS_METRIC}{{level="):
            levels[f"{name.split('=')[1].rstrip('}')} hit"] = round(value)
        elif name.startswith(f"{MISSES_METRIC}{{reason="):
            levels[name.split("=")[1].rstrip("}")] = round(value)
    return dict(sorted(levels.items()))


@dataclass(frozen=True)
class ServiceLag:
    """The service's lag histogram over one stretch: messages applied, mean,
    and the upper bound of the bucket holding the 99th percentile."""

    count: int
    mean_ms: float
    p99_bucket_ms: float | None

    @classmethod
    def of(cls, delta: Samples) -> ServiceLag:
        count = round(delta.get(f"{LAG_METRIC}_count", 0.0))
        total = delta.get(f"{LAG_METRIC}_sum", 0.0)
        # Bucket keys look like `..._bucket{le=0.005}` (see _scrape); cumulative.
        buckets = sorted(
            (float(name.split("le=")[-1].rstrip("}")), value)
            for name, value in delta.items()
            if name.startswith(f"{LAG_METRIC}_bucket")
        )
        p99: float | None = None
        for upper, cumulative in buckets:
            if count and cumulative >= 0.99 * count:
                p99 = upper * 1000
                break
        return cls(count, total / count * 1000 if count else 0.0, p99)


# --- phases -------------------------------------------------------------------------


def phase_figures(phase: Phase, levels: dict[str, int] | None = None) -> dict[str, Any]:
    errors = {k: v for k, v in sorted(phase.outcomes.items()) if k != OK}
    figures: dict[str, Any] = {
        "requests": len(phase.latencies),
        "ok": phase.ok,
        "errors": errors,
        "wall_s": round(phase.wall_seconds, 4),
        "per_s": round(phase.throughput, 1),
        "client_cpu_s": round(phase.client_cpu_seconds, 3),
        "rounds_per_s": phase.rounds,
        **{k: round(v, 3) for k, v in asdict(Latencies.of(phase.latencies)).items()},
    }
    if levels is not None:
        figures["service_answers"] = levels
    return figures


@dataclass
class Measured:
    """A phase over all its rounds, with what the service counted meanwhile."""

    phase: Phase
    service: Samples = field(default_factory=dict)

    @property
    def wrong(self) -> int:
        return self.phase.outcomes[WRONG]


async def run_rounds(
    calls: dict[str, Call], metrics: Metrics, options: Options
) -> dict[str, Measured]:
    """Every call for `options.rounds` rounds, in order then reversed, and so on."""
    rounds: dict[str, list[Phase]] = {label: [] for label in calls}
    service: dict[str, Counter[str]] = {label: Counter() for label in calls}
    for r in range(options.rounds):
        for label in list(calls) if r % 2 == 0 else reversed(list(calls)):
            before = await metrics.read()
            phase = await keep_busy(
                label, calls[label], options.concurrency, options.requests, options.seconds
            )
            service[label].update(Metrics.delta(before, await metrics.read()))
            rounds[label].append(phase)
    return {
        label: Measured(Phase.merge(label, phases), dict(service[label]))
        for label, phases in rounds.items()
    }


# --- invalidation lag ----------------------------------------------------------------


@dataclass
class LagResult:
    capacity: int
    lags: list[float] = field(default_factory=list)
    # How long the call that first showed the booking took (it is a cache miss).
    seen_calls: list[float] = field(default_factory=list)
    polls: list[int] = field(default_factory=list)
    # Rounds in which a wrong answer came, or the booking never showed.
    wrong: list[str] = field(default_factory=list)
    poll_errors: Counter[str] = field(default_factory=Counter)
    service: ServiceLag | None = None

    def figures(self) -> dict[str, Any]:
        lat = Latencies.of(self.lags)
        polls = sorted(self.polls)
        return {
            "rounds": len(self.lags) + len(self.wrong),
            "seen": len(self.lags),
            "wrong": self.wrong,
            "poll_errors": dict(self.poll_errors),
            **{k: round(v, 3) for k, v in asdict(lat).items()},
            "seen_call_p50_ms": round(Latencies.of(self.seen_calls).p50_ms, 3),
            "polls_p50": polls[len(polls) // 2] if polls else None,
            "target_met": bool(self.lags) and not self.wrong and lat.p99_ms < LAG_P99_TARGET_MS,
            "service": asdict(self.service) if self.service else None,
        }


class LagRounds:
    """Hold, warm, confirm, and time until the booking shows, round after round."""

    def __init__(
        self,
        booking: booking_pb2_grpc.BookingServiceStub,
        availability: AvailabilityClient,
        tenant: str,
        resource_id: str,
        slot_id: str,
        capacity: int,
        options: Options,
    ) -> None:
        self.booking = booking
        self.availability = availability
        self.metadata = ((TENANT_ID_KEY, tenant),)
        self.resource_id = resource_id
        self.slot_id = slot_id
        self.window = (BASE_TIME, BASE_TIME + timedelta(hours=1))
        self.options = options
        self.result = LagResult(capacity)

    async def slot(self) -> availability_pb2.SlotAvailability:
        answer = await self.availability.get(self.resource_id, *self.window)
        [slot] = answer.slots
        return slot

    async def until(
        self, accept: Callable[[availability_pb2.SlotAvailability], bool], since: float
    ) -> tuple[availability_pb2.SlotAvailability, float, float, int] | None:
        """Polls until `accept` holds: (that slot, when its call was sent, when
        it was answered, polls so far), or None after --lag-timeout. Errors are
        counted and polled through."""
        interval = self.options.lag_poll_ms / 1000
        deadline = since + self.options.lag_timeout
        polls = 0
        while True:
            sent = time.perf_counter()
            polls += 1
            try:
                slot = await self.slot()
            except grpc.aio.AioRpcError as error:
                details = details_of(error)
                self.result.poll_errors[outcome_of_status(details.code, details.reason)] += 1
            else:
                answered = time.perf_counter()
                if accept(slot):
                    return slot, sent, answered, polls
            now = time.perf_counter()
            if now > deadline:
                return None
            if sent + interval > now:
                await asyncio.sleep(sent + interval - now)

    async def round(self, booked: int) -> None:
        capacity = self.result.capacity
        hold = await self.booking.CreateHold(
            booking_pb2.CreateHoldRequest(
                resource_id=self.resource_id,
                slot_ids=[self.slot_id],
                quantity=1,
                customer_ref="bench",
            ),
            metadata=self.metadata,
            timeout=CALL_TIMEOUT_SECONDS,
        )
        # Warm: the answer shows the hold, then settles (so the hold's own
        # invalidation is no longer in flight) and is read again from the cache.
        held = await self.until(lambda s: s.held == 1 and s.booked == booked, time.perf_counter())
        if held is None:
            self.result.wrong.append(f"round {booked}: the hold never showed")
            return
        await asyncio.sleep(self.options.lag_settle_ms / 1000)
        before = await self.slot()
        if (before.held, before.booked) != (1, booked):
            self.result.wrong.append(f"round {booked}: held/booked {before.held}/{before.booked}")
            return

        await self.booking.ConfirmHold(
            booking_pb2.ConfirmHoldRequest(hold_id=hold.hold.hold_id, payment_ref="bench"),
            metadata=self.metadata,
            timeout=CALL_TIMEOUT_SECONDS,
        )
        committed = time.perf_counter()
        seen = await self.until(lambda s: s.booked != booked or s.held != 1, committed)
        if seen is None:
            self.result.wrong.append(f"round {booked}: the booking never showed")
            return
        slot, sent, answered, polls = seen
        expected = (capacity, capacity - booked - 1, 0, booked + 1, True)
        got = (slot.capacity, slot.available, slot.held, slot.booked, slot.open)
        if got != expected:
            self.result.wrong.append(f"round {booked}: {got}, expected {expected}")
            return
        self.result.lags.append(answered - committed)
        self.result.seen_calls.append(answered - sent)
        self.result.polls.append(polls)

    async def run(self, metrics: Metrics) -> LagResult:
        before = await metrics.read()
        for booked in range(self.options.lag_rounds):
            await self.round(booked)
        if metrics.url:
            self.result.service = ServiceLag.of(Metrics.delta(before, await metrics.read()))
        return self.result


# --- the benchmark ----------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    booking_target: str
    availability_target: str
    redis_url: str
    availability_metrics: str | None
    channels: int
    concurrency: int
    requests: int
    seconds: float | None
    rounds: int
    warmup: int
    slots: int
    lag_rounds: int
    lag_poll_ms: float
    lag_settle_ms: float
    lag_timeout: float


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


@dataclass
class Results:
    answer_bytes: int
    hits: Measured
    redis: Measured
    misses: Measured
    lag: LagResult

    @property
    def ratio(self) -> float:
        redis = self.redis.phase.throughput
        return self.hits.phase.throughput / redis if redis else 0.0

    @property
    def hit_p99_ms(self) -> float:
        return Latencies.of(self.hits.phase.latencies).p99_ms

    @property
    def wrong(self) -> int:
        return self.hits.wrong + self.redis.wrong + self.misses.wrong + len(self.lag.wrong)


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


# --- output -------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _fmt(value: float) -> str:
    return f"{value:9.2f}"


def report(options: Options, tenant: str, redis_version: str, results: Results) -> dict[str, Any]:
    print(
        f"holdfast availability benchmark  availability={options.availability_target}  "
        f"booking={options.booking_target}  tenant={tenant}\n"
        f"  {os.cpu_count()} CPUs, Python {platform.python_version()}, Redis {redis_version}, "
        f"{options.channels} gRPC channels, concurrency {options.concurrency}\n"
    )
    work = f"{options.requests} requests" if options.seconds is None else f"{options.seconds:g} s"
    print(
        f"throughput: {options.rounds} alternating rounds of {work} per phase, after "
        f"{options.warmup} warm-up requests each; {options.slots} slots per answer, "
        f"{results.answer_bytes} bytes cached"
    )
    print(
        f"  {'phase':<14}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'errors':>8}{'client cpu':>12}   req/s per round"
    )
    for measured in (results.hits, results.redis, results.misses):
        phase = measured.phase
        p = Latencies.of(phase.latencies)
        errors = len(phase.latencies) - phase.ok
        cpu_share = phase.client_cpu_seconds / phase.wall_seconds if phase.wall_seconds else 0
        print(
            f"  {phase.label:<14}{phase.throughput:9.0f}{_fmt(p.p50_ms)}{_fmt(p.p95_ms)}"
            f"{_fmt(p.p99_ms)}{_fmt(p.max_ms)}{errors:8d}{cpu_share:12.0%}   "
            + " ".join(f"{t:.0f}" for t in phase.rounds)
        )
        for name, count in phase.outcomes.items():
            if name != OK:
                print(f"    {name}: {count}")
        answered = cache_levels(measured.service)
        if answered:
            print("    the service answered: " + ", ".join(f"{k} {v}" for k, v in answered.items()))
    hits_levels = cache_levels(results.hits.service)
    not_hits = sum(v for k, v in hits_levels.items() if not k.endswith(" hit"))
    misses_levels = cache_levels(results.misses.service)
    not_misses = sum(v for k, v in misses_levels.items() if k != "miss")
    if not_hits or not_misses:
        print(
            f"  NOTE: {not_hits} answers of the hits phase were not cache hits and "
            f"{not_misses} of the misses phase were not misses: those figures are mixed"
        )
    print(
        f"  hit p99 {results.hit_p99_ms:.2f} ms (target < {HIT_P99_TARGET_MS:g} ms: "
        f"{_verdict(results.hit_p99_ms < HIT_P99_TARGET_MS)}); "
        f"hits / raw GET {results.ratio:.2f} (target >= {HIT_RATIO_TARGET}: "
        f"{_verdict(results.ratio >= HIT_RATIO_TARGET)})\n"
    )

    lag = results.lag
    figures = lag.figures()
    print(
        f"invalidation lag: {figures['rounds']} rounds of hold, warm, ConfirmHold, "
        f"then GetAvailability every {options.lag_poll_ms:g} ms until the booking shows"
    )
    if lag.lags:
        p = Latencies.of(lag.lags)
        print(
            f"  ConfirmHold answered -> booking visible: p50 {p.p50_ms:.1f}  p95 {p.p95_ms:.1f}  "
            f"p99 {p.p99_ms:.1f}  max {p.max_ms:.1f} ms  (target p99 < {LAG_P99_TARGET_MS:g} ms: "
            f"{_verdict(figures['target_met'])})\n"
            f"  polls per round p50 {figures['polls_p50']}; the call that saw it "
            f"(a miss) took p50 {figures['seen_call_p50_ms']:.2f} ms"
        )
    for name, count in lag.poll_errors.items():
        print(f"  poll errors {name}: {count}")
    for wrong in lag.wrong:
        print(f"  WRONG: {wrong}")
    if lag.service:
        s = lag.service
        p99 = f"<= {s.p99_bucket_ms:g} ms" if s.p99_bucket_ms is not None else "-"
        print(
            f"  service side (commit -> applied, {s.count} messages: the holds' and the "
            f"confirms'): mean {s.mean_ms:.2f} ms, p99 {p99}"
        )
    print()

    def answered_by(measured: Measured) -> dict[str, int] | None:
        return cache_levels(measured.service) if options.availability_metrics else None

    return {
        "bench": "availability",
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "availability_target": options.availability_target,
        "booking_target": options.booking_target,
        "tenant": tenant,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "redis": redis_version,
        },
        "options": asdict(options) | {"redis_url": None},
        "answer_bytes": results.answer_bytes,
        "hits": phase_figures(results.hits.phase, answered_by(results.hits)),
        "redis_get": phase_figures(results.redis.phase),
        "misses": phase_figures(results.misses.phase, answered_by(results.misses)),
        "hits_over_redis_get": round(results.ratio, 3),
        "targets": {
            "hit_p99_ms": HIT_P99_TARGET_MS,
            "hit_p99_met": results.hit_p99_ms < HIT_P99_TARGET_MS,
            "ratio": HIT_RATIO_TARGET,
            "ratio_met": results.ratio >= HIT_RATIO_TARGET,
            "lag_p99_ms": LAG_P99_TARGET_MS,
            "lag_p99_met": figures["target_met"],
        },
        "lag": figures,
        "wrong_answers": results.wrong,
    }


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


def parse(argv: Sequence[str] | None = None) -> Options:
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
