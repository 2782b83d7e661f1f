"""The outbox after an outage.

Every service runs on a Postgres of the test's own
(tests/support/postgres_server.py), which the test stops and starts; the
run's shared Postgres is never touched. A row the relay sent to Redis just as Postgres
went away is marked published once it is back, not sent again after its
lease.
"""

from __future__ import annotations

from typing import cast

import asyncpg
import grpc

from holdfast.platform.streams import AVAILABILITY_TOPIC, stream_key
from services.booking.server import BookingApp
from tests.support.availability import eventually
from tests.support.booking import BookingClient
from tests.support.postgres_server import PostgresServer
from tests.support.redis_server import RedisServer
from tests.support.services import (
    running_booking,
)


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
                "SELECT attempts FROM outbox WHERE dedupe_key = $1", f"hold.created:{hold.hold_id}"
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
