"""Postgres goes away under the booking service's gRPC callers.

Every service runs on a Postgres of the test's own
(tests/support/postgres_server.py), which the test stops and starts; the
run's shared Postgres is never touched. While it is stopped, or while the connections to it
are dropped midway, a call is answered UNAVAILABLE with RetryInfo; afterwards
the pool recovers and no request is made twice.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Awaitable

import grpc
import pytest

from holdfast.contracts.booking.v1 import booking_pb2
from holdfast.platform.grpc_errors import ErrorDetails
from tests.support.availability import eventually
from tests.support.booking import error_of, outcome
from tests.support.postgres_server import PostgresServer, StopMode
from tests.support.redis_server import RedisServer
from tests.support.services import (
    own_booking_app,
)
from tests.support.tcp_proxy import TcpProxy


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
