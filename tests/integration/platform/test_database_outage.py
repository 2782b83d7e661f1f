"""Postgres goes away for seconds under load, and comes back.

Every service runs on a Postgres of the test's own (tests/support/postgres_server.py),
which the test stops and starts; the run's shared Postgres is never touched.
What a caller sees meanwhile is an answer or a 503 with Retry-After (gRPC:
UNAVAILABLE with RetryInfo), never a 500; afterwards everything works again
without a restart, and nothing is left half-written.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg
import httpx
import pytest

from gateway.server import GatewayApp
from holdfast.tenancy.keys import KeyRepository
from services.availability.server import AvailabilityApp
from services.booking.server import BookingApp
from tests.support.availability import eventually
from tests.support.gateway import key_for
from tests.support.postgres_server import PostgresServer
from tests.support.redis_server import RedisServer
from tests.support.services import (
    running_availability,
    running_booking,
    running_gateway,
)

WINDOW = {"start": "2031-05-31T00:00:00Z", "end": "2031-06-30T00:00:00Z"}


@dataclass
class Outage:
    """The services on the test's own Postgres and Redis, and a caller's key."""

    postgres: PostgresServer
    database_url: str
    booking: BookingApp
    availability: AvailabilityApp
    gateway: GatewayApp
    api: httpx.AsyncClient
    auth: dict[str, str]


@pytest.fixture
async def outage(
    postgres_server: PostgresServer, redis_server: RedisServer
) -> AsyncIterator[Outage]:
    url = await postgres_server.create_database("holdfast", migrated=True)
    redis = {"redis_url": redis_server.url}
    async with (
        running_booking(url, **redis, relay_retry_max_seconds=1.0) as booking,
        running_availability(url, **redis) as availability,
        running_gateway(
            url,
            f"127.0.0.1:{booking.port}",
            f"127.0.0.1:{availability.port}",
            **redis,
            # Lapses during the outage: the grace keeps the key working.
            key_cache_seconds=1,
            # The load comes from one address and one key.
            rate_limit_per_address=100_000,
            rate_limit_per_key=100_000,
        ) as gateway,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}", timeout=30) as api,
        asyncpg.create_pool(url, min_size=1, max_size=2) as db,
    ):
        auth = await key_for(KeyRepository(db), f"t-{uuid.uuid4().hex[:12]}")
        yield Outage(postgres_server, url, booking, availability, gateway, api, auth)


@dataclass
class Load:
    """Holds and availability reads through the gateway, from `workers`
    callers at once, until told to stop; every answer is kept."""

    api: httpx.AsyncClient
    auth: dict[str, str]
    resource_id: str
    slot_id: str
    # A resource nobody changes: its availability stays in the cache.
    quiet_resource_id: str
    answers: list[tuple[str, httpx.Response]] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    # Idempotency keys of holds answered 503: each may or may not have happened.
    unsure: list[str] = field(default_factory=list)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, workers: int) -> None:
        await asyncio.gather(*(self._worker(n) for n in range(workers)))

    def stop(self) -> None:
        self._stopping.set()

    async def _worker(self, n: int) -> None:
        while not self._stopping.is_set():
            if n % 2:
                await self.hold()
            elif n % 4:
                await self.read()
            else:
                await self.read(self.quiet_resource_id)

    async def hold(self) -> httpx.Response:
        key = uuid.uuid4().hex
        body = {"resource_id": self.resource_id, "slot_ids": [self.slot_id], "quantity": 1}
        answer = await self.api.post(
            "/v1/holds", json=body, headers={**self.auth, "Idempotency-Key": key}
        )
        self.answers.append(("hold", answer))
        if answer.status_code == 201:
            self.held.append(answer.json()["id"])
        elif answer.status_code == 503:
            self.unsure.append(key)
        return answer

    async def read(self, resource_id: str | None = None) -> httpx.Response:
        quiet = resource_id == self.quiet_resource_id
        answer = await self.api.get(
            f"/v1/resources/{resource_id or self.resource_id}/availability",
            params=WINDOW,
            headers=self.auth,
        )
        self.answers.append(("quiet read" if quiet else "read", answer))
        return answer


async def _inventory(api: httpx.AsyncClient, auth: dict[str, str]) -> tuple[str, str]:
    """A resource with one slot big enough for every hold the test makes."""
    made = await api.post(
        "/v1/resources",
        headers=auth,
        json={
            "name": "Ferry",
            "time_zone": "Europe/Lisbon",
            "price": {"currency": "EUR", "amount_minor": 900},
            "default_capacity": 100_000,
        },
    )
    assert made.status_code == 201, made.text
    resource: str = made.json()["id"]
    slots = await api.post(
        f"/v1/resources/{resource}/slots",
        headers=auth,
        json={"slots": [{"start": "2031-06-01T09:00:00Z", "end": "2031-06-01T10:00:00Z"}]},
    )
    assert slots.status_code == 201, slots.text
    return resource, slots.json()["items"][0]["id"]


def _not_an_answer_or_a_503(answers: list[tuple[str, httpx.Response]]) -> list[str]:
    """Every answer that is neither a success nor a 503 a client can act on."""
    wrong = []
    for kind, answer in answers:
        if answer.status_code in (200, 201):
            continue
        if (
            answer.status_code == 503
            and answer.headers.get("content-type") == "application/problem+json"
            and answer.headers.get("Retry-After", "").isdigit()
        ):
            continue
        wrong.append(f"{kind} {answer.status_code} {answer.headers} {answer.text[:300]}")
    return wrong


@dataclass
class Stopped:
    """What the load saw of Postgres stopping for 3 s: the answers while it
    was away, and how long after its start the first hold succeeded and the
    outbox written before the outage was published."""

    during: list[tuple[str, httpx.Response]]
    first_hold_after: float
    drained_after: float


async def _postgres_stopped_under(outage: Outage, load: Load) -> Stopped:
    running = asyncio.create_task(load.run(workers=16))
    loop = asyncio.get_running_loop()

    def answered(kind: str, status: int, since: int = 0) -> int:
        return sum(1 for k, a in load.answers[since:] if k == kind and a.status_code == status)

    async def holds_since(since: int) -> int:
        return answered("hold", 201, since)

    async def quiet_reads() -> int:
        return answered("quiet read", 200)

    # Holds and reads succeed first (the quiet resource is in the cache by
    # then), then Postgres stops for 3 s: long past the gateway's key cache
    # time (1 s), so its grace is what keeps the key working.
    await eventually(lambda: holds_since(0), lambda n: n >= 20, within=30)
    await eventually(quiet_reads, lambda n: n >= 5, within=30)
    async with asyncpg.create_pool(outage.database_url, min_size=1, max_size=1) as db:
        written_before: int = await db.fetchval("SELECT max(id) FROM outbox")
    await outage.postgres.stop("fast")
    stopped_at = len(load.answers)
    await asyncio.sleep(3)
    during = load.answers[stopped_at:]
    await outage.postgres.start()
    back_at, back = loop.time(), len(load.answers)

    await eventually(lambda: holds_since(back), lambda n: n >= 1, within=60, interval=0.01)
    first_hold_after = loop.time() - back_at
    async with asyncpg.create_pool(outage.database_url, min_size=1, max_size=1) as db:

        async def unpublished() -> int:
            count: int = await db.fetchval(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL AND id <= $1",
                written_before,
            )
            return count

        await eventually(unpublished, lambda n: n == 0, within=60, interval=0.01)
    drained_after = loop.time() - back_at
    await eventually(lambda: holds_since(back), lambda n: n >= 50, within=60)
    load.stop()
    await running

    return Stopped(during, first_hold_after, drained_after)


async def test_the_gateway_answers_only_2xx_or_503_while_postgres_is_away(outage: Outage) -> None:
    api, auth = outage.api, outage.auth
    resource, slot = await _inventory(api, auth)
    quiet, _ = await _inventory(api, auth)
    load = Load(api, auth, resource, slot, quiet)
    stopped = await _postgres_stopped_under(outage, load)
    during = stopped.during
    first_hold_after, drained_after = stopped.first_hold_after, stopped.drained_after

    outcomes = Counter(
        (kind, a.status_code, a.json().get("reason", "") if a.status_code >= 400 else "")
        for kind, a in load.answers
    )
    print(
        f"\nanswers: {dict(outcomes)}\nPostgres back -> first hold {first_hold_after:.2f} s,"
        f" -> outbox written before the outage published {drained_after:.2f} s"
    )
    assert _not_an_answer_or_a_503(load.answers) == []
    # The outage was seen: holds were refused while Postgres was away...
    assert any(kind == "hold" and a.status_code == 503 for kind, a in during)
    # ...while cached availability kept being served to the known key.
    quiet_during = [a.status_code for kind, a in during if kind == "quiet read"]
    assert quiet_during
    assert set(quiet_during) == {200}, Counter(quiet_during)
    # Now holds and reads work again, without any restart.
    fresh_hold = await load.hold()
    fresh_read = await load.read()
    assert fresh_hold.status_code == 201, fresh_hold.text
    assert fresh_read.status_code == 200, fresh_read.text
    await _nothing_half_written(outage.database_url, slot, load)


async def _nothing_half_written(url: str, slot: str, load: Load) -> None:
    """Every hold on the slot is whole (its line, audit row, outbox row and
    idempotency response), the slot counts exactly the held places, every hold
    answered 201 is there, and of those answered 503 none is there in part."""
    async with asyncpg.create_pool(url, min_size=1, max_size=1) as db:
        holds = await db.fetch(
            """
            SELECT h.id, h.quantity, h.status,
                   (SELECT count(*) FROM hold_lines l WHERE l.hold_id = h.id) AS lines,
                   (SELECT count(*) FROM audit_log a
                     WHERE a.entity_id = h.id AND a.action = 'hold.created') AS audits,
                   (SELECT count(*) FROM outbox o
                     WHERE o.dedupe_key = 'hold.created:' || h.id::text) AS outbox_rows
            FROM holds h
            WHERE h.id IN (SELECT hold_id FROM hold_lines WHERE slot_id = $1::uuid)
            """,
            slot,
        )
        held = await db.fetchval("SELECT held FROM slots WHERE id = $1::uuid", slot)
        # The gateway's Idempotency-Key is the hold's request id.
        records = await db.fetch(
            "SELECT request_id, response IS NOT NULL AS answered FROM idempotency_records"
            " WHERE request_id = ANY($1::text[])",
            load.unsure,
        )
    assert {str(row["id"]) for row in holds} >= set(load.held)
    whole = [(r["status"], r["lines"], r["audits"], r["outbox_rows"]) for r in holds]
    assert set(whole) == {("HELD", 1, 1, 1)}, whole
    assert held == sum(row["quantity"] for row in holds)
    # A hold answered 503 either happened whole (its record holds the answer a
    # retry gets) or not at all (no record: a retry makes it).
    assert all(row["answered"] for row in records), records
    assert len(holds) == len(load.held) + len(records)
