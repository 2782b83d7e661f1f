"""What the fault tests drive and check: concurrent load through the gateway
with every answer recorded, and the books (slots, holds, audit, outbox,
request ids) read back from Postgres.

An answer is *as designed* when it is a success, a 4xx the route may give
under load (sold out, or a retryable conflict with Retry-After), or a 503
with Retry-After. Anything else (a 500, a 504, an answer that says the key
is wrong, no answer at all) is a failure the test reports.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx

from tests.support.availability import eventually
from tests.support.gateway import Event, EventStream

# Conflicts a client retries after the Retry-After it is given.
RETRYABLE_CONFLICTS = frozenset({"LOCK_TIMEOUT", "CONCURRENT_UPDATE", "CAPACITY_CONFLICT"})
# What a hold request may be refused with when the slot is taken.
SOLD_OUT = frozenset({"SOLD_OUT"})
# Far in the future, so no slot is ever in the past.
DAY = "2031-06-01"


@dataclass(frozen=True)
class Answer:
    """One request and how the gateway answered it (status 0: not at all)."""

    route: str
    status: int
    reason: str
    retry_after: str | None
    sent_at: float
    answered_at: float
    body: Any = None

    def as_designed(self, refusals: frozenset[str]) -> bool:
        if 200 <= self.status < 300:
            return True
        if self.status == 503:
            return self.retry_after is not None
        if self.status == 409 and self.reason in RETRYABLE_CONFLICTS:
            return self.retry_after is not None
        return self.status == 409 and self.reason in refusals


@dataclass
class Answers:
    """Every answer of a scenario, in the order they came."""

    items: list[Answer] = field(default_factory=list)

    async def call(
        self,
        route: str,
        request: Awaitable[httpx.Response],
    ) -> Answer:
        sent = time.monotonic()
        try:
            response = await request
        except httpx.HTTPError as error:
            answer = Answer(route, 0, type(error).__name__, None, sent, time.monotonic())
        else:
            body: Any = None
            reason = ""
            if response.headers.get("content-type", "").endswith("json"):
                body = response.json()
                if response.status_code >= 400 and isinstance(body, dict):
                    reason = str(body.get("reason", ""))
            answer = Answer(
                route,
                response.status_code,
                reason,
                response.headers.get("retry-after"),
                sent,
                time.monotonic(),
                body,
            )
        self.items.append(answer)
        return answer

    def summary(self) -> Counter[tuple[str, int, str]]:
        return Counter((a.route, a.status, a.reason) for a in self.items)

    def assert_as_designed(self, refusals: dict[str, frozenset[str]] | None = None) -> None:
        """Every answer is as designed; `refusals` names the 409 reasons each
        route may give (holds: sold out)."""
        allowed = {"POST /v1/holds": SOLD_OUT, **(refusals or {})}
        wrong = [a for a in self.items if not a.as_designed(allowed.get(a.route, frozenset()))]
        assert not wrong, (
            f"{len(wrong)} of {len(self.items)} answers not as designed, e.g. "
            f"{[(a.route, a.status, a.reason, a.retry_after) for a in wrong[:5]]}; "
            f"all answers: {dict(self.summary())}"
        )

    def first(self, route: str, status: int, sent_after: float) -> Answer | None:
        """The earliest such answer to a request sent after `sent_after`."""
        matching = [
            a
            for a in self.items
            if a.route == route and a.status == status and a.sent_at >= sent_after
        ]
        return min(matching, key=lambda a: a.answered_at, default=None)


@dataclass
class Promises:
    """A scenario's promises, each checked and all reported together, so one
    broken promise does not hide the others."""

    broken: list[str] = field(default_factory=list)

    async def check(self, promise: str, check: Callable[[], object]) -> None:
        try:
            outcome = check()
            if inspect.isawaitable(outcome):
                await outcome
        except AssertionError as error:
            self.broken.append(f"{promise}: {error}")

    def assert_kept(self) -> None:
        assert not self.broken, "broken promises:\n- " + "\n- ".join(self.broken)


# Gateway settings for load from one key and one address: the rate limits
# are not what these tests are about.
UNLIMITED_GATEWAY = {"rate_limit_per_key": "1000000", "rate_limit_per_address": "1000000"}


# --- inventory and keys ------------------------------------------------------


async def resource_with_slots(
    api: httpx.AsyncClient, capacities: Iterable[int], name: str = "Fault tour"
) -> tuple[str, list[str]]:
    """A resource with one-hour slots of these capacities on DAY, made
    through the gateway's admin routes; returns its id and the slot ids."""
    made = await api.post(
        "/v1/resources",
        json={
            "name": name,
            "time_zone": "Europe/Lisbon",
            "price": {"currency": "EUR", "amount_minor": 2500},
            "default_capacity": 1,
        },
    )
    assert made.status_code == 201, made.text
    resource: str = made.json()["id"]
    wanted = list(capacities)
    slots = await api.post(
        f"/v1/resources/{resource}/slots",
        json={
            "slots": [
                {
                    "start": f"{DAY}T{hour:02d}:00:00Z",
                    "end": f"{DAY}T{hour + 1:02d}:00:00Z",
                    "capacity": capacity,
                }
                for hour, capacity in enumerate(wanted, start=6)
            ]
        },
    )
    assert slots.status_code == 201, slots.text
    return resource, [s["id"] for s in slots.json()["items"]]


WINDOW = {"start": f"{DAY}T00:00:00Z", "end": f"{DAY}T23:59:00Z"}


# --- load --------------------------------------------------------------------


@dataclass
class KeyedRequest:
    """One Idempotency-Key and its body, with every answer it was given:
    (status, hold id if one), in order."""

    key: str
    body: dict[str, Any]
    answers: list[tuple[int, str | None]] = field(default_factory=list)

    @property
    def hold_ids(self) -> list[str]:
        return [hold for _, hold in self.answers if hold is not None]


@dataclass
class HoldLoad:
    """Customers holding places on a resource's slots through the gateway,
    each request with an Idempotency-Key of its own; some of them give the
    places back at once, so the slots keep changing hands; and readers of the
    availability. Stops when `stop` is set."""

    api: httpx.AsyncClient
    resource: str
    slots: list[str]
    answers: Answers
    prefix: str
    release_share: float = 0.5
    # Seconds each customer waits between requests: the pace of the load.
    pause: float = 0.05
    requests: dict[str, KeyedRequest] = field(default_factory=dict)
    _numbers: itertools.count[int] = field(default_factory=itertools.count)

    async def hold(self, keyed: KeyedRequest) -> Answer:
        answer = await self.answers.call(
            "POST /v1/holds",
            self.api.post("/v1/holds", json=keyed.body, headers={"Idempotency-Key": keyed.key}),
        )
        keyed.answers.append((answer.status, answer.body["id"] if answer.status == 201 else None))
        return answer

    async def _customer(self, stop: asyncio.Event, rng: random.Random) -> None:
        while not stop.is_set():
            key = f"{self.prefix}-{next(self._numbers)}"
            body = {
                "resource_id": self.resource,
                "slot_ids": [rng.choice(self.slots)],
                "quantity": rng.randint(1, 2),
            }
            keyed = self.requests[key] = KeyedRequest(key, body)
            answer = await self.hold(keyed)
            if answer.status == 201 and rng.random() < self.release_share:
                await self.answers.call(
                    "DELETE /v1/holds/{id}", self.api.delete(f"/v1/holds/{answer.body['id']}")
                )
            await asyncio.sleep(self.pause)

    async def _reader(self, stop: asyncio.Event) -> None:
        path = f"/v1/resources/{self.resource}/availability"
        while not stop.is_set():
            await self.answers.call(
                "GET /v1/resources/{id}/availability", self.api.get(path, params=WINDOW)
            )
            await asyncio.sleep(self.pause * 2)

    async def run(self, stop: asyncio.Event, customers: int = 4, readers: int = 1) -> None:
        seed = random.Random(self.prefix)
        async with asyncio.TaskGroup() as group:
            for _ in range(customers):
                group.create_task(self._customer(stop, random.Random(seed.random())))
            for _ in range(readers):
                group.create_task(self._reader(stop))

    async def retry_every_key(self, at_once: int = 8) -> None:
        """Sends every request again with its own key and body, `at_once` at
        a time, as clients that never heard back would: the answer must be
        the hold it got before, if any (see `assert_one_hold_per_key`)."""
        gate = asyncio.Semaphore(at_once)

        async def retry(keyed: KeyedRequest) -> None:
            async with gate:
                await self.hold(keyed)

        async with asyncio.TaskGroup() as group:
            for keyed in list(self.requests.values()):
                group.create_task(retry(keyed))

    async def count_holds(self) -> int:
        """How many holds the load was given so far (for `eventually`)."""
        return len(self.hold_ids())

    def hold_ids(self) -> set[str]:
        return {hold for keyed in self.requests.values() for hold in keyed.hold_ids}

    def assert_one_hold_per_key(self) -> None:
        """Once a key was answered with a hold, it is answered with that hold
        every time it is sent again; and no two keys share a hold."""
        forgetful = {
            k.key: k.answers
            for k in self.requests.values()
            if k.hold_ids and any(a != (201, k.hold_ids[0]) for a in k.answers[_first_hold(k) :])
        }
        assert not forgetful, f"keys not answered with their hold again: {forgetful}"
        owners = Counter(hold for k in self.requests.values() for hold in set(k.hold_ids))
        shared = [hold for hold, count in owners.items() if count > 1]
        assert not shared, f"holds answered to several keys: {shared}"


def _first_hold(keyed: KeyedRequest) -> int:
    return next(i for i, (_, hold) in enumerate(keyed.answers) if hold is not None)


# --- the books ---------------------------------------------------------------


async def assert_books_balance(db: asyncpg.Pool) -> None:
    """Nothing oversold and nothing half-written, over the whole database:
    every slot's held and booked are exactly what its live holds and
    bookings add up to (and within capacity); every hold has its lines, and
    an audit row and an outbox row for its creation and for its current
    status; every request id that was kept has its answer."""
    slots = await db.fetch(
        """
        SELECT s.id, s.capacity, s.held, s.booked,
               coalesce(sum(h.quantity) FILTER (WHERE h.status = 'HELD'), 0) AS live_held,
               coalesce(sum(h.quantity) FILTER (WHERE h.status = 'CONFIRMED'), 0) AS live_booked
        FROM slots s
        LEFT JOIN hold_lines l ON l.slot_id = s.id
        LEFT JOIN holds h ON h.id = l.hold_id
        GROUP BY s.id
        """
    )
    oversold = [dict(r) for r in slots if r["held"] + r["booked"] > r["capacity"]]
    assert not oversold, f"oversold: {oversold}"
    adrift = [
        dict(r) for r in slots if (r["held"], r["booked"]) != (r["live_held"], r["live_booked"])
    ]
    assert not adrift, f"slot counts differ from their holds: {adrift}"
    holds = await db.fetch(
        """
        SELECT h.id, h.status,
               EXISTS (SELECT 1 FROM hold_lines l WHERE l.hold_id = h.id) AS lines,
               EXISTS (SELECT 1 FROM audit_log a
                       WHERE a.entity_id = h.id AND a.action = 'hold.created') AS created_audited,
               EXISTS (SELECT 1 FROM outbox o
                       WHERE o.dedupe_key = 'hold.created:' || h.id) AS created_announced,
               h.status = 'HELD' OR EXISTS (
                   SELECT 1 FROM audit_log a
                   WHERE a.entity_id = h.id AND a.action = 'hold.' || lower(h.status)
               ) AS status_audited,
               h.status = 'HELD' OR EXISTS (
                   SELECT 1 FROM outbox o
                   WHERE o.dedupe_key = 'hold.' || lower(h.status) || ':' || h.id
               ) AS status_announced
        FROM holds h
        """
    )
    checks = ("lines", "created_audited", "created_announced", "status_audited", "status_announced")
    half_written = [dict(r) for r in holds if not all(r[c] for c in checks)]
    assert not half_written, f"holds written in part: {half_written}"
    unanswered = await db.fetchval(
        "SELECT count(*) FROM idempotency_records WHERE response IS NULL"
    )
    assert unanswered == 0, f"{unanswered} request ids kept without their answer"


async def unpublished(db: asyncpg.Pool, topic: str | None = None) -> int:
    count: int = await db.fetchval(
        "SELECT count(*) FROM outbox"
        " WHERE published_at IS NULL AND ($1::text IS NULL OR topic = $1)",
        topic,
    )
    return count


async def assert_outbox_published(db: asyncpg.Pool, within: float) -> float:
    """Waits until every outbox row is published; returns how long it took."""
    started = time.monotonic()

    async def left() -> int:
        return await unpublished(db)

    try:
        await eventually(left, lambda n: n == 0, within=within, interval=0.1)
    except AssertionError:
        rows = await db.fetch(
            "SELECT id, topic, dedupe_key, attempts, next_attempt_at - now() AS due_in, last_error"
            " FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT 5"
        )
        raise AssertionError(
            f"outbox rows still unpublished after {within} s: {[dict(r) for r in rows]}"
        ) from None
    return time.monotonic() - started


async def database_hold_ids(db: asyncpg.Pool) -> set[str]:
    return {str(r["id"]) for r in await db.fetch("SELECT id FROM holds")}


# --- Server-Sent Events ------------------------------------------------------


@dataclass
class Subscriber:
    """A client of the availability stream that keeps every event with the
    time it arrived, reading in the background (`read`, as a task)."""

    stream: EventStream
    events: list[tuple[float, Event]] = field(default_factory=list)
    # Why the stream ended, if it did.
    ended: str | None = None
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def read(self) -> None:
        try:
            while True:
                event = await self.stream.next_event(within=3600)
                async with self._arrived:
                    self.events.append((time.monotonic(), event))
                    self._arrived.notify_all()
        except (AssertionError, httpx.HTTPError) as error:
            async with self._arrived:
                self.ended = f"{type(error).__name__}: {error}"
                self._arrived.notify_all()

    async def wait_for(
        self, shows: Callable[[dict[str, Any]], bool], within: float, after: float = 0.0
    ) -> tuple[float, dict[str, Any]]:
        """The first event that arrived after `after` (so far or to come)
        whose numbers satisfy `shows`, and when it arrived; fails if none
        comes within `within` seconds."""

        def found() -> tuple[float, dict[str, Any]] | None:
            for arrived, event in self.events:
                if arrived >= after and shows(event.json()):
                    return arrived, event.json()
            return None

        try:
            async with asyncio.timeout(within), self._arrived:
                await self._arrived.wait_for(lambda: found() is not None or self.ended is not None)
        except TimeoutError:
            raise AssertionError(f"no such event on the stream within {within} s") from None
        match = found()
        assert match is not None, f"the stream ended: {self.ended}"
        return match


def slot_numbers(availability: dict[str, Any], slot: str) -> tuple[int, int, int]:
    """(available, held, booked) of one slot in an availability answer."""
    [numbers] = [s for s in availability["slots"] if s["slot_id"] == slot]
    return numbers["available"], numbers["held"], numbers["booked"]
