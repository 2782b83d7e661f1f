"""Load for the fault tests (tests/faults/): customers holding through the
gateway with Idempotency-Keys, and readers, every answer recorded; then
every key retried, each of which must answer with its one hold."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.faults import (
    WINDOW,
    Answer,
    Answers,
)


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
