"""Redis dies mid-test and comes back empty.

While it is down, availability answers from Postgres and says it is degraded,
and the booking service keeps taking holds while the outbox keeps their
messages. When it is back, the outbox drains and the cache is exact again.
"""

from __future__ import annotations

import asyncpg
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.availability.server import CACHE_HEALTH, AvailabilityApp
from tests.support.availability import AvailabilityClient, SlotCounts, eventually
from tests.support.metrics import sample
from tests.support.redis_server import RedisServer
from tests.support.services import own_booking_app, running_availability


async def _pending(db: asyncpg.Pool, tenant: str) -> int:
    count: int = await db.fetchval(
        "SELECT count(*) FROM outbox WHERE tenant_id = $1 AND published_at IS NULL", tenant
    )
    return count


async def _cache_health(channel: grpc.aio.Channel) -> int:
    response = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=CACHE_HEALTH)
    )
    status: int = response.status
    return status


def _hits(app: AvailabilityApp) -> float:
    return sum(
        sample(app, "holdfast_availability_cache_hits_total", level=level)
        for level in ("local", "redis")
    )


async def test_reads_and_holds_survive_a_redis_restart(
    own_database: str, tenant: str, redis_server: RedisServer
) -> None:
    fast_retries = {"redis_url": redis_server.url, "relay_retry_max_seconds": 0.3}
    async with (
        asyncpg.create_pool(own_database, min_size=1, max_size=2) as db,
        own_booking_app(own_database, tenant, **fast_retries) as client,
        running_availability(own_database, redis_url=redis_server.url) as app,
        grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel,
    ):
        availability = AvailabilityClient.on(channel, tenant)
        resource, [slot] = await client.resource_with_slots(capacity=5)
        rid, sid = resource.resource_id, slot.slot_id

        async def counts() -> SlotCounts:
            return (await availability.slot_counts(rid))[sid]

        await eventually(counts, lambda c: c == SlotCounts(5, 5, 0, 0, True))
        assert await _cache_health(channel) == health_pb2.HealthCheckResponse.SERVING

        redis_server.kill()

        await eventually(lambda: _cache_health(channel), lambda s: s != 1)  # 1 = SERVING
        assert sample(app, "holdfast_availability_degraded") == 1
        hold = await client.hold(rid, [sid], quantity=2)
        assert await counts() == SlotCounts(5, 3, 2, 0, True)  # at once, from Postgres
        assert await _pending(db, tenant) >= 1  # the hold's message waits in the outbox
        failed = await eventually(
            lambda: db.fetchrow(
                "SELECT attempts, last_error FROM outbox WHERE dedupe_key = $1",
                f"hold.created:{hold.hold_id}",
            ),
            lambda row: row["attempts"] >= 2,  # retried, with backoff
        )
        assert "Error" in failed["last_error"]

        redis_server.start()  # empty, as after a crash without persistence

        await eventually(lambda: _pending(db, tenant), lambda n: n == 0)
        await eventually(lambda: _cache_health(channel), lambda s: s == 1)
        assert sample(app, "holdfast_availability_degraded") == 0
        hits = _hits(app)
        assert await counts() == SlotCounts(5, 3, 2, 0, True)
        assert await counts() == SlotCounts(5, 3, 2, 0, True)
        assert _hits(app) > hits  # answered from the cache again

        await client.release(hold.hold_id)
        await eventually(counts, lambda c: c == SlotCounts(5, 5, 0, 0, True))
