"""Postgres stopped for several seconds under load, then started again on the
same address with the same data: every answer meanwhile is a success, a
refusal as designed or a 503 with Retry-After (never a 500); the booking
service says it is not serving while the database is away; afterwards new
holds succeed, nothing is oversold or half-written, every committed change
is published, an availability stream opened before the outage carries on,
and all of it without restarting any service.

The database is a throwaway server of the test's own (the run's shared one
is never stopped).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.availability import eventually
from tests.support.fault_books import (
    assert_books_balance,
    assert_outbox_published,
    database_hold_ids,
)
from tests.support.fault_load import HoldLoad
from tests.support.fault_stream import Subscriber, slot_numbers
from tests.support.faults import UNLIMITED_GATEWAY, WINDOW, Answers, Promises, resource_with_slots
from tests.support.gateway import EventStream
from tests.support.postgres_server import PostgresServer
from tests.support.redis_server import RedisServer
from tests.support.stack import Stack, api_key, running_stack

pytestmark = pytest.mark.faults

LIMIT_SECONDS = 150
# Longer than the time a service waits before it calls the database gone (a
# blip changes nothing; 3 s by default, 1 s here), so readiness has to turn.
OUTAGE_SECONDS = 3.0
BOOKING_SERVICE = "holdfast.booking.v1.BookingService"
SLOTS = (3, 4, 200)
DATABASE_WATCH = {"db_health_interval_seconds": "0.25", "db_unready_after_seconds": "1"}
GATEWAY_SETTINGS = {
    **UNLIMITED_GATEWAY,
    **DATABASE_WATCH,
    # Shorter than the outage, so the gateway's cached API key lapses while
    # the database is away: its answer must still not be a 401 or a 500.
    "key_cache_seconds": "1",
}
SETTINGS = {
    "gateway": GATEWAY_SETTINGS,
    "booking": DATABASE_WATCH,
    "availability": DATABASE_WATCH,
    "webhooks": DATABASE_WATCH,
}


async def watch_health(target: str, seen: list[tuple[float, int]], stop: asyncio.Event) -> None:
    """Records the booking service's readiness (time, status) until `stop`:
    the health of its BookingService, which readiness probes ask."""
    request = health_pb2.HealthCheckRequest(service=BOOKING_SERVICE)
    async with grpc.aio.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while not stop.is_set():
            try:
                answer = await health.Check(request, timeout=1)
                seen.append((time.monotonic(), answer.status))
            except grpc.aio.AioRpcError:
                seen.append((time.monotonic(), -1))
            await asyncio.sleep(0.1)


async def test_postgres_stopped_under_load(
    redis_server: RedisServer, tmp_path: Path, report_figure: Callable[[str, float], None]
) -> None:
    server = PostgresServer()
    promises = Promises()
    async with asyncio.timeout(LIMIT_SECONDS):
        await server.start()
        try:
            database = await server.create_database("holdfast", migrated=True)
            await _outage(database, server, redis_server, tmp_path, promises, report_figure)
        finally:
            await server.close()
    promises.assert_kept()


async def _outage(
    database: str,
    server: PostgresServer,
    redis_server: RedisServer,
    tmp_path: Path,
    promises: Promises,
    report_figure: Callable[[str, float], None],
) -> None:
    async with (
        running_stack(database, redis_server.url, tmp_path, settings=SETTINGS) as stack,
        httpx.AsyncClient(
            base_url=stack.gateway, headers=await api_key(database), timeout=15
        ) as api,
    ):
        resource, slots = await resource_with_slots(api, SLOTS)
        answers = Answers()
        load = HoldLoad(api, resource, slots, answers, prefix="pg")
        stop = asyncio.Event()
        health: list[tuple[float, int]] = []
        stream_path = f"/v1/resources/{resource}/availability/stream"
        async with api.stream("GET", stream_path, params=WINDOW) as subscription:
            assert subscription.status_code == 200
            subscriber = Subscriber(EventStream(subscription))
            reading = asyncio.create_task(subscriber.read())
            watching = asyncio.create_task(watch_health(stack.targets["booking"], health, stop))
            running = asyncio.create_task(load.run(stop))
            try:
                stopped, back = await _stop_and_start(server, load, answers)
            finally:
                stop.set()
                await running
                await watching
            await _check_the_recovery(
                stack, answers, health, (stopped, back), promises, report_figure
            )
            async with asyncpg.create_pool(database, min_size=1, max_size=2) as db:
                await _check_the_books(
                    db, api, (resource, slots), subscriber, reading, load, promises
                )
            # The first answers and the retries alike.
            await promises.check("every answer as designed (no 500)", answers.assert_as_designed)
        print(f"answers: {dict(answers.summary())}")


async def _stop_and_start(
    server: PostgresServer, load: HoldLoad, answers: Answers
) -> tuple[float, float]:
    """Stops Postgres under load for OUTAGE_SECONDS and starts it again;
    returns when it stopped and when it was back, once a hold went through."""
    await eventually(load.count_holds, lambda n: n >= 10)
    # "immediate", a crash: connections drop without a word, and
    # the next start recovers from the WAL (nothing committed is lost).
    await server.stop("immediate")
    stopped = time.monotonic()
    await asyncio.sleep(OUTAGE_SECONDS)
    await server.start()
    back = time.monotonic()

    async def held_again() -> bool:
        return answers.first("POST /v1/holds", 201, sent_after=back) is not None

    await eventually(held_again, bool, within=30)
    # A moment of load on the recovered system too.
    await asyncio.sleep(1.0)
    return stopped, back


async def _check_the_recovery(
    stack: Stack,
    answers: Answers,
    health: list[tuple[float, int]],
    outage: tuple[float, float],
    promises: Promises,
    report_figure: Callable[[str, float], None],
) -> None:
    stopped, back = outage
    first = answers.first("POST /v1/holds", 201, sent_after=back)
    assert first is not None
    report_figure("database back -> first hold through the gateway", first.answered_at - back)

    def not_serving_while_away() -> None:
        during = {status for at, status in health if stopped + 1 < at < back}
        assert health_pb2.HealthCheckResponse.NOT_SERVING in during, (
            f"the booking service's health while the database was away: {during}"
        )
        since = [status for at, status in health if at > first.answered_at]
        assert since, "no health answer after the recovery"
        assert since[-1] == health_pb2.HealthCheckResponse.SERVING, since

    await promises.check(
        "the booking service reports NOT_SERVING while the database is away",
        not_serving_while_away,
    )

    async def ready_again() -> None:
        async with httpx.AsyncClient(base_url=stack.gateway, timeout=5) as probe:
            status = await eventually(
                lambda: _status(probe, "/readyz"), lambda s: s == 200, within=10
            )
        assert status == 200

    await promises.check("the gateway is ready again", ready_again)


async def _check_the_books(
    db: asyncpg.Pool,
    api: httpx.AsyncClient,
    inventory: tuple[str, list[str]],
    subscriber: Subscriber,
    reading: asyncio.Task[None],
    load: HoldLoad,
    promises: Promises,
) -> None:
    resource, slots = inventory
    await promises.check("nothing oversold, nothing half-written", lambda: assert_books_balance(db))
    await promises.check(
        "every committed change published", lambda: assert_outbox_published(db, within=10)
    )

    # The stream opened before the outage shows a change made after it.
    after: list[str] = []

    async def stream_carries_on() -> None:
        big = slots[-1]
        row = await db.fetchrow(
            "SELECT capacity - held - booked AS available, held, booked"
            " FROM slots WHERE id = $1::uuid",
            big,
        )
        now = (row["available"] - 1, row["held"] + 1, row["booked"])
        held = await api.post(
            "/v1/holds",
            json={"resource_id": resource, "slot_ids": [big], "quantity": 1},
            headers={"Idempotency-Key": "pg-after"},
        )
        assert held.status_code == 201, held.text
        after.append(held.json()["id"])

        def shows(numbers: dict[str, Any]) -> bool:
            return slot_numbers(numbers, big) == now

        await subscriber.wait_for(shows, within=15)

    await promises.check(
        "an availability stream opened before the outage carries on", stream_carries_on
    )
    reading.cancel()
    await asyncio.gather(reading, return_exceptions=True)

    await load.retry_every_key()
    await promises.check("one hold per Idempotency-Key", load.assert_one_hold_per_key)

    async def every_hold_answered() -> None:
        unanswered = await database_hold_ids(db) - load.hold_ids() - set(after)
        assert not unanswered, f"holds no key was answered with: {unanswered}"

    await promises.check("every hold in the database was answered to its key", every_hold_answered)
    await promises.check("the books still balance", lambda: assert_books_balance(db))


async def _status(http: httpx.AsyncClient, path: str) -> int:
    try:
        return (await http.get(path)).status_code
    except httpx.TransportError:
        return 0
