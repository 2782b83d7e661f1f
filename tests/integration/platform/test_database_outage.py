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
from collections.abc import AsyncIterator, Awaitable, Iterable
from dataclasses import dataclass, field
from typing import cast

import asyncpg
import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devtools.engines import free_port
from gateway.server import GatewayApp
from holdfast.contracts.booking.v1 import booking_pb2
from holdfast.platform.db import database_error
from holdfast.platform.errors import ErrorKind
from holdfast.platform.grpc_errors import ErrorDetails
from holdfast.platform.streams import AVAILABILITY_TOPIC, stream_key
from holdfast.tenancy.keys import KeyRepository
from services.availability.server import SERVICE_NAME as AVAILABILITY_SERVICE
from services.availability.server import AvailabilityApp
from services.booking.server import SERVICE_NAMES as BOOKING_SERVICES
from services.booking.server import BookingApp
from services.webhooks.server import SERVICE_NAME as WEBHOOKS_SERVICE
from services.webhooks.server import WebhooksApp
from tests.support.availability import eventually
from tests.support.booking import BookingClient, error_of, outcome
from tests.support.gateway import key_for
from tests.support.metrics import sample
from tests.support.postgres_server import PostgresServer, StopMode
from tests.support.redis_server import RedisServer
from tests.support.services import (
    own_booking_app,
    running_availability,
    running_booking,
    running_gateway,
    running_webhooks,
)
from tests.support.tcp_proxy import TcpProxy

WINDOW = {"start": "2031-05-31T00:00:00Z", "end": "2031-06-30T00:00:00Z"}
RECOVERY_CONFLICT_MESSAGE = "canceling statement due to conflict with recovery"


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


async def test_the_gateway_answers_only_2xx_or_503_while_postgres_is_away(outage: Outage) -> None:
    api, auth = outage.api, outage.auth
    resource, slot = await _inventory(api, auth)
    quiet, _ = await _inventory(api, auth)
    load = Load(api, auth, resource, slot, quiet)
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


# --- the booking service over gRPC ------------------------------------------------


@pytest.fixture
async def own_postgres_url(postgres_server: PostgresServer) -> str:
    """A migrated database on the test's own Postgres."""
    return await postgres_server.create_database("holdfast", migrated=True)


async def _unavailable(call: Awaitable[object]) -> ErrorDetails:
    details = await error_of(call)
    assert details.code is grpc.StatusCode.UNAVAILABLE, details
    assert details.reason == "DATABASE_UNAVAILABLE", details
    assert details.retry_after, details
    return details


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_booking_answers_unavailable_with_retry_info_while_postgres_is_stopped(
    postgres_server: PostgresServer,
    own_postgres_url: str,
    redis_server: RedisServer,
    tenant: str,
    mode: StopMode,
) -> None:
    async with own_booking_app(own_postgres_url, tenant, redis_url=redis_server.url) as client:
        resource, [slot] = await client.resource_with_slots(capacity=100)
        held = await client.hold(resource.resource_id, [slot.slot_id])
        await postgres_server.stop(mode)
        # Many at once, so that pooled connections the stop broke are used too.
        calls: list[Awaitable[object]] = [
            client.hold(resource.resource_id, [slot.slot_id]) for _ in range(20)
        ]
        calls += [client.slot(resource.resource_id, slot.slot_id) for _ in range(5)]
        calls += [client.release(held.hold_id) for _ in range(5)]
        outcomes = await asyncio.gather(*(outcome(call) for call in calls))
        details = await _unavailable(client.hold(resource.resource_id, [slot.slot_id]))
        await postgres_server.start()

        async def hold_again() -> str:
            return await outcome(client.hold(resource.resource_id, [slot.slot_id]))

        await eventually(hold_again, lambda result: result == "OK", within=30)
        released = await client.release(held.hold_id)
        counts = await client.slot(resource.resource_id, slot.slot_id)

    assert set(outcomes) == {"UNAVAILABLE:DATABASE_UNAVAILABLE"}, Counter(outcomes)
    assert details.retry_after == 1.0
    assert released.status == booking_pb2.HOLD_STATUS_RELEASED
    # The hold made after the restart, nothing from the calls refused.
    assert (counts.held, counts.booked) == (1, 0)


async def test_connections_dropped_midway_are_unavailable_and_the_pool_recovers(
    postgres_server: PostgresServer, own_postgres_url: str, redis_server: RedisServer, tenant: str
) -> None:
    """A proxy between the service and Postgres drops every connection, as a
    network failure would, and refuses new ones for a while."""
    proxy = TcpProxy("127.0.0.1", postgres_server.port)
    await proxy.start()
    through_proxy = own_postgres_url.replace(
        f"127.0.0.1:{postgres_server.port}", f"127.0.0.1:{proxy.port}"
    )
    async with own_booking_app(through_proxy, tenant, redis_url=redis_server.url) as client:
        resource, [slot] = await client.resource_with_slots(capacity=100_000)
        stopping = asyncio.Event()
        outcomes: list[str] = []
        refused: list[str] = []  # request ids answered UNAVAILABLE

        async def hold(request_id: str) -> str:
            call = client.hold(resource.resource_id, [slot.slot_id], request_id=request_id)
            return await outcome(call)

        async def keep_holding() -> None:
            while not stopping.is_set():
                request_id = uuid.uuid4().hex
                outcomes.append(await hold(request_id))
                if outcomes[-1] != "OK":
                    refused.append(request_id)

        workers = [asyncio.create_task(keep_holding()) for _ in range(8)]
        await eventually(lambda: _count(outcomes, "OK"), lambda n: n >= 20, within=30)
        await proxy.cut()
        cut_at = len(outcomes)
        await eventually(lambda: _count(outcomes[cut_at:], "OK", "not"), lambda n: n >= 20)
        await proxy.start()
        back_at = len(outcomes)
        await eventually(lambda: _count(outcomes[back_at:], "OK"), lambda n: n >= 20, within=30)
        stopping.set()
        await asyncio.gather(*workers)
        # What a client does with UNAVAILABLE: the same request again. A hold
        # whose commit happened just before its connection dropped answers
        # as it would have; the others are made now. Never two of one.
        retried = [await hold(request_id) for request_id in refused]
        counts = await client.slot(resource.resource_id, slot.slot_id)
    await proxy.cut()

    assert set(outcomes) == {"OK", "UNAVAILABLE:DATABASE_UNAVAILABLE"}, Counter(outcomes)
    assert set(retried) == {"OK"}, Counter(retried)
    # One place for every request, whether answered at once or on its retry.
    assert counts.held == outcomes.count("OK") + len(refused)


async def _count(outcomes: list[str], wanted: str, which: str = "is") -> int:
    return sum(1 for o in outcomes if (o == wanted) == (which == "is"))


# --- health: readiness follows the database, liveness stays up -------------------

FAST_HEALTH = {"db_health_interval_seconds": 0.2, "db_unready_after_seconds": 1.0}
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def _health(port: int, names: Iterable[str]) -> dict[str, int]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return {
            name: (await stub.Check(health_pb2.HealthCheckRequest(service=name))).status
            for name in names
        }


async def _readiness_follows_the_database(
    postgres: PostgresServer, app: BookingApp | WebhooksApp, names: tuple[str, ...]
) -> None:
    """Stops Postgres: the services' own entries turn NOT_SERVING while the
    server-wide "" entry (liveness) stays SERVING; starts it: SERVING again."""
    everything = ("", *names)
    assert await _health(app.port, everything) == dict.fromkeys(everything, SERVING)
    await postgres.stop("fast")
    down = await eventually(
        lambda: _health(app.port, everything), lambda h: h[names[0]] == NOT_SERVING, within=30
    )
    up_while_down = sample(app, "holdfast_db_up")
    await postgres.start()
    up = await eventually(
        lambda: _health(app.port, everything), lambda h: h[names[0]] == SERVING, within=30
    )
    assert down == {"": SERVING, **dict.fromkeys(names, NOT_SERVING)}
    assert up == dict.fromkeys(everything, SERVING)
    assert (up_while_down, sample(app, "holdfast_db_up")) == (0, 1)


async def test_booking_is_not_ready_while_postgres_is_away(
    postgres_server: PostgresServer, own_postgres_url: str, redis_server: RedisServer
) -> None:
    async with running_booking(
        own_postgres_url, redis_url=redis_server.url, **FAST_HEALTH
    ) as booking:
        await _readiness_follows_the_database(postgres_server, booking, BOOKING_SERVICES)


async def test_webhooks_is_not_ready_while_postgres_is_away(
    postgres_server: PostgresServer, own_postgres_url: str
) -> None:
    nowhere = f"127.0.0.1:{free_port()}"  # no booking service is needed here
    async with running_webhooks(own_postgres_url, nowhere, **FAST_HEALTH) as webhooks:
        await _readiness_follows_the_database(postgres_server, webhooks, (WEBHOOKS_SERVICE,))


async def test_availability_stays_ready_on_its_cache_until_redis_goes_too(
    postgres_server: PostgresServer, own_postgres_url: str, redis_server: RedisServer
) -> None:
    """Without Postgres it still answers from its cache (what was cached),
    so it stays ready; without Postgres and Redis it can answer nothing."""
    names = ("", AVAILABILITY_SERVICE)
    async with running_availability(
        own_postgres_url, redis_url=redis_server.url, **FAST_HEALTH
    ) as availability:
        await postgres_server.stop("fast")

        async def database_available() -> bool:
            return availability.database.available

        await eventually(database_available, lambda up: not up, within=30)
        on_cache = await _health(availability.port, names)
        redis_server.kill()
        nothing = await eventually(
            lambda: _health(availability.port, names),
            lambda h: h[AVAILABILITY_SERVICE] == NOT_SERVING,
            within=30,
        )
        await postgres_server.start()
        on_postgres = await eventually(
            lambda: _health(availability.port, names),
            lambda h: h[AVAILABILITY_SERVICE] == SERVING,
            within=30,
        )

    assert on_cache == {"": SERVING, AVAILABILITY_SERVICE: SERVING}
    assert nothing == {"": SERVING, AVAILABILITY_SERVICE: NOT_SERVING}
    assert on_postgres == {"": SERVING, AVAILABILITY_SERVICE: SERVING}


# --- the outbox after an outage ---------------------------------------------------


async def test_a_row_published_while_postgres_went_away_is_recorded_once_it_is_back(
    postgres_server: PostgresServer, own_postgres_url: str, redis_server: RedisServer, tenant: str
) -> None:
    """The relay claims a row and sends it to Redis; before it can mark it
    published, Postgres is gone. Once Postgres is back the row is marked at
    once, not after its lease (10 minutes here) has run out."""
    async with (
        running_booking(
            own_postgres_url,
            redis_url=redis_server.url,
            relay_lease_seconds=600,
            # Redis is paused below with the relay's append in flight: it waits.
            redis_timeout_seconds=60,
        ) as booking,
        grpc.aio.insecure_channel(f"127.0.0.1:{booking.port}") as channel,
    ):
        client = BookingClient.on(channel, tenant)
        resource, [slot] = await client.resource_with_slots()
        async with asyncpg.create_pool(own_postgres_url, min_size=1, max_size=1) as db:
            await eventually(lambda: _unpublished(db), lambda n: n == 0)
            redis_server.pause()
            hold = await client.hold(resource.resource_id, [slot.slot_id])
            # Claimed: the relay is now waiting for Redis to take it.
            await eventually(lambda: _claimed(db, hold.hold_id), bool, within=30)
        await postgres_server.stop("fast")
        redis_server.resume()
        # The append completes; marking it published cannot.
        await eventually(lambda: _in_stream(booking, hold.hold_id), bool, within=30)
        await postgres_server.start()
        async with asyncpg.create_pool(own_postgres_url, min_size=1, max_size=1) as db:
            await eventually(lambda: _unpublished(db), lambda n: n == 0, within=60)
            attempts = await db.fetchval(
                "SELECT attempts FROM outbox WHERE dedupe_key = $1",
                f"hold.created:{hold.hold_id}",
            )
    # Marked, not published a second time after a lease.
    assert attempts == 1


async def _unpublished(db: asyncpg.Pool) -> int:
    count: int = await db.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
    return count


async def _claimed(db: asyncpg.Pool, hold_id: str) -> bool:
    attempts = await db.fetchval(
        "SELECT attempts FROM outbox WHERE dedupe_key = $1", f"hold.created:{hold_id}"
    )
    return bool(attempts)


async def _in_stream(booking: BookingApp, hold_id: str) -> bool:
    entries = cast(
        "list[tuple[bytes, dict[bytes, bytes]]]",
        await booking.redis.xrange(stream_key(booking.settings, AVAILABILITY_TOPIC)),
    )
    return any(fields[b"dedupe"] == f"hold.created:{hold_id}".encode() for _, fields in entries)


# --- a hot standby cancelling a query for replay -----------------------------------


async def test_a_query_a_standby_cancels_for_replay_is_unavailable(
    postgres_server: PostgresServer, own_postgres_url: str
) -> None:
    """Availability may read from a replica. A standby that must replay a
    change conflicting with a running query cancels the query: SQLSTATE 40001,
    the code of a serialization failure, but no client conflict; retried a
    moment later it works. It is UNAVAILABLE, not INTERNAL nor ABORTED."""
    standby = await PostgresServer.standby_of(postgres_server, {"max_standby_streaming_delay": "0"})
    try:
        replica_url = standby.url("holdfast")

        async def replica_has_slots() -> bool:
            try:
                conn = await asyncpg.connect(replica_url, timeout=5)
            except (OSError, asyncpg.PostgresError):
                return False
            try:
                return bool(await conn.fetchval("SELECT to_regclass('slots') IS NOT NULL"))
            finally:
                await conn.close()

        await eventually(replica_has_slots, bool, within=30)
        reader = await asyncpg.connect(replica_url, timeout=5)
        primary = await asyncpg.connect(own_postgres_url, timeout=5)
        try:
            long_read = asyncio.create_task(
                reader.fetchval("SELECT count(*) FROM slots, pg_sleep(30)")
            )

            async def reading() -> int:
                count: int = await primary.fetchval("SELECT 1")  # the primary is fine
                watcher = await asyncpg.connect(replica_url, timeout=5)
                try:
                    count = await watcher.fetchval(
                        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%'"
                        " AND state = 'active' AND pid <> pg_backend_pid()"
                    )
                finally:
                    await watcher.close()
                return count

            await eventually(reading, lambda n: n == 1, within=30)
            # Replayed on the standby, this lock conflicts with the read's.
            async with primary.transaction():
                await primary.execute("LOCK TABLE slots IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(asyncpg.PostgresError) as cancelled:
                await long_read
            again = await reader.fetchval("SELECT count(*) FROM slots")
        finally:
            await reader.close()
            await primary.close()
    finally:
        await standby.close()

    error = cancelled.value
    assert (error.sqlstate, error.message) == ("40001", RECOVERY_CONFLICT_MESSAGE)
    mapped = database_error(error)
    assert mapped is not None
    assert (mapped.kind, mapped.reason) == (ErrorKind.UNAVAILABLE, "DATABASE_UNAVAILABLE")
    assert again == 0  # the same connection reads again at once
