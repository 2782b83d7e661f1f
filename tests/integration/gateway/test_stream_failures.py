"""Live availability over Server-Sent Events when something fails: a change
trimmed from the stream before a resumption, Redis down, a change that cannot
be read. Each test runs a stack on a database and Redis of its own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from holdfast.platform.streams import stream_position
from holdfast.tenancy.keys import KeyRepository
from services.availability.server import AvailabilityApp
from services.booking.server import BookingApp
from tests.support.availability import settled
from tests.support.booking import BookingClient
from tests.support.gateway import Event, key_for, problem_of
from tests.support.postgres_server import PostgresServer
from tests.support.redis_server import RedisServer
from tests.support.services import running_availability, running_booking, running_gateway
from tests.support.sse import (
    WINDOW,
    OwnStack,
    held,
    hold,
    resource_with_slot,
    running_own_stack,
    subscribed,
)
from tests.support.tcp_proxy import TcpProxy


@pytest.fixture
async def own_stack(own_database: str, redis_server: RedisServer) -> AsyncIterator[OwnStack]:
    async with running_own_stack(own_database, redis_server) as stack:
        yield stack


async def test_a_stream_resumed_after_its_change_was_trimmed_gets_the_current_numbers(
    own_stack: OwnStack, tenant: str
) -> None:
    """The stream keeps a bounded number of entries: a client away for long
    cannot be told what it missed, so it gets the current numbers."""
    api, redis = own_stack.api, own_stack.redis
    auth = await key_for(own_stack.keys, tenant)
    resource, slot = await resource_with_slot(api, auth)
    _, elsewhere = await resource_with_slot(api, auth)
    await settled(own_stack.availability, own_stack.db, tenant)
    async with subscribed(api, resource, auth) as stream:
        last = await stream.next_event()

    await hold(api, auth, resource, slot)
    await settled(own_stack.availability, own_stack.db, tenant)
    # The hold's entry is trimmed away (as MAXLEN does to old entries), and
    # later the stream goes on with a change elsewhere.
    newest: list[tuple[bytes, object]] = await redis.xrevrange(own_stack.stream, count=1)  # type: ignore[assignment]
    await redis.xtrim(own_stack.stream, minid=f"{stream_position(newest[0][0])[0] + 1}-0")
    closed = await api.post(f"/v1/slots/{elsewhere}/close", headers=auth)
    assert closed.status_code == 200, closed.text
    await settled(own_stack.availability, own_stack.db, tenant)
    async with subscribed(api, resource, auth, last.id) as resumed:
        before_heartbeat = await resumed.until(comments=1)

    assert held(last) == 0
    assert [held(e) for e in before_heartbeat] == [1]


async def test_a_stream_asked_for_while_redis_is_down_is_a_503(
    migrated_database: str,
    booking_app: BookingApp,
    availability_app: AvailabilityApp,
    redis_server: RedisServer,
    keys: KeyRepository,
    client: BookingClient,
    tenant: str,
) -> None:
    """Without the stream there are no changes to push: the client is told to
    come back, as for any service that is down."""
    auth = await key_for(keys, tenant)
    resource, _ = await client.resource_with_slots()
    async with (
        running_gateway(
            migrated_database,
            f"127.0.0.1:{booking_app.port}",
            f"127.0.0.1:{availability_app.port}",
            redis_url=redis_server.url,
        ) as gateway,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}", timeout=10) as api,
    ):
        redis_server.kill()
        response = await api.get(
            f"/v1/resources/{resource.resource_id}/availability/stream", params=WINDOW, headers=auth
        )

    problem_of(response, 503)


def availability_answers(app: AvailabilityApp, code: str) -> float:
    """GetAvailability calls the availability service answered with `code`."""
    return sum(
        s.value
        for family in app.metrics.registry.collect()
        for s in family.samples
        if s.name == "holdfast_grpc_requests_total"
        and "GetAvailability" in s.labels["method"]
        and s.labels["code"] == code
    )


async def test_a_stream_carries_on_while_a_change_cannot_be_read(
    postgres_server: PostgresServer, redis_server: RedisServer, tenant: str
) -> None:
    """The availability service's database goes away just as a change comes:
    its numbers cannot be read (the service answers UNAVAILABLE), so the
    stream sends heartbeats meanwhile, and the numbers once they can be read,
    over the same connection."""
    database = await postgres_server.create_database("holdfast", migrated=True)
    proxy = TcpProxy("127.0.0.1", postgres_server.port)
    own = {"redis_url": redis_server.url}
    async with (
        proxy,
        running_booking(database, **own) as booking,
        running_availability(
            database.replace(f":{postgres_server.port}/", f":{proxy.port}/"), **own
        ) as availability,
        running_gateway(
            database, f"127.0.0.1:{booking.port}", f"127.0.0.1:{availability.port}", **own
        ) as gateway,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}", timeout=10) as api,
        asyncpg.create_pool(database, min_size=1, max_size=2) as db,
    ):
        auth = await key_for(KeyRepository(db), tenant)
        resource, slot = await resource_with_slot(api, auth)
        await settled(availability, db, tenant)
        async with subscribed(api, resource, auth) as stream:
            first = await stream.next_event()
            await proxy.cut()
            refused_before = availability_answers(availability, "UNAVAILABLE")
            await hold(api, auth, resource, slot)
            # The gateway reads the change, fails, and reads it again a second
            # later, failing again; the stream sends heartbeats all along.
            while_away: list[Event] = []
            heartbeats = len(stream.comments)
            async with asyncio.timeout(30):
                while availability_answers(availability, "UNAVAILABLE") < refused_before + 2:
                    while_away += await stream.until(comments=1)
            heartbeats = len(stream.comments) - heartbeats
            await proxy.start()
            after = await stream.next_event(within=15)

    assert held(first) == 0
    assert heartbeats >= 2  # a second of failed reads: two heartbeats at least
    assert while_away == []
    assert held(after) == 1
    assert stream_position(after.id or "") > stream_position(first.id or "")
