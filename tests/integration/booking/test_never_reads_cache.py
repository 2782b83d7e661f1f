"""The booking path never trusts the cache (invariant 5), shown by Redis itself.

The booking service runs against a Redis of the test's own, which nothing else
uses. After a tour of every booking call, Redis's own command statistics list
what the service sent: stream appends from the outbox relay, and no read.
"""

from __future__ import annotations

import asyncpg
from redis.asyncio import Redis

from holdfast.contracts.booking.v1 import booking_pb2
from tests.support.availability import eventually
from tests.support.booking import outcome
from tests.support.redis_server import RedisServer
from tests.support.services import own_booking_app

# What a client may send without reading data: connection set-up and our own
# statistics calls. Everything else must be an append.
_HOUSEKEEPING = {"client", "hello", "ping", "info", "config", "select"}


async def test_the_booking_service_sends_redis_only_stream_appends(
    own_database: str, tenant: str, redis_server: RedisServer
) -> None:
    admin = Redis.from_url(redis_server.url)
    await admin.config_resetstat()
    async with (
        asyncpg.create_pool(own_database, min_size=1, max_size=2) as db,
        own_booking_app(own_database, tenant, redis_url=redis_server.url) as client,
    ):
        resource, [slot] = await client.resource_with_slots(capacity=2)
        rid, sid = resource.resource_id, slot.slot_id
        first = await client.hold(rid, [sid], request_id="r-1")
        await client.hold(rid, [sid], request_id="r-1")  # an idempotent replay
        second = await client.hold(rid, [sid])
        assert await outcome(client.hold(rid, [sid])) == "FAILED_PRECONDITION:SOLD_OUT"
        await client.confirm(first.hold_id)
        await client.release(second.hold_id)
        await client.cancel(first.hold_id)
        await client.set_capacity(sid, 4)
        await client.close(sid)
        await client.reopen(sid)
        await client.booking.GetHold(
            booking_pb2.GetHoldRequest(hold_id=first.hold_id), metadata=client.md
        )

        async def pending() -> int:
            count: int = await db.fetchval(
                "SELECT count(*) FROM outbox WHERE tenant_id = $1 AND published_at IS NULL",
                tenant,
            )
            return count

        await eventually(pending, lambda n: n == 0)

    stats = await admin.info("commandstats")
    await admin.aclose()
    sent = {name.removeprefix("cmdstat_").split("|")[0] for name in stats}
    assert "xadd" in sent
    assert sent - _HOUSEKEEPING == {"xadd"}
