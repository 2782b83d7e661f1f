"""What the fault tests drive and check: concurrent load through the gateway
with every answer recorded, and the books (slots, holds, audit, outbox,
request ids) read back from Postgres.

An answer is *as designed* when it is a success, a 4xx the route may give
under load (sold out, or a retryable conflict with Retry-After), or a 503
with Retry-After. Anything else (a 500, a 504, an answer that says the key
is wrong, no answer at all) is a failure the test reports.

This module holds the answers, the promises and the inventory; the load is
in fault_load.py, the books in fault_books.py, the stream client in
fault_stream.py.
"""

from __future__ import annotations

import inspect
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

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
