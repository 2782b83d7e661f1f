"""Window availability while Redis is down and after it comes back empty:
answered from Postgres at once while degraded, from the cache again after,
exact throughout (as test_redis_outage.py shows for slots)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import asyncpg
import grpc

from holdfast.scheduling.hours import OpeningRange
from holdfast.scheduling.intervals import Interval
from holdfast.scheduling.rules import WindowRules
from services.availability.server import AvailabilityApp
from tests.support.availability import AvailabilityClient, eventually
from tests.support.metrics import sample
from tests.support.redis_server import RedisServer
from tests.support.services import running_availability, running_booking
from tests.support.windows import (
    EVERY_DAY,
    Expected,
    WindowDesk,
    WindowedResource,
    expected,
    same_hours,
    seen,
    window_availability,
)

DAY = date(2030, 6, 1)
HOUR = timedelta(hours=1)
RULES = WindowRules(HOUR, 3 * HOUR, timedelta(minutes=30), buffer_after=timedelta(minutes=30))


def _hits(app: AvailabilityApp) -> float:
    return sum(
        sample(app, "holdfast_availability_cache_hits_total", level=level)
        for level in ("local", "redis")
    )


async def test_window_answers_survive_a_redis_restart(
    own_database: str, tenant: str, redis_server: RedisServer
) -> None:
    async with (
        asyncpg.create_pool(own_database, min_size=1, max_size=2) as db,
        running_booking(
            own_database, redis_url=redis_server.url, relay_retry_max_seconds=0.3
        ) as booking,
        running_availability(own_database, redis_url=redis_server.url) as app,
        grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel,
    ):
        assert booking.relay is not None
        desk = WindowDesk.on(db, booking.relay.wake, tenant)
        availability = AvailabilityClient.on(channel, tenant)
        hours = same_hours(EVERY_DAY, OpeningRange(time(12), time(22)))
        room = await desk.resource("Europe/Lisbon", RULES, {"A": 2, "B": 4}, hours)

        async def answer() -> Expected:
            return seen(await window_availability(availability, room.id, DAY, DAY, 2, 2 * HOUR))

        async def truth() -> Expected:
            return await expected(desk, room, DAY, DAY, 2, 2 * HOUR, datetime.now(UTC))

        await eventually(answer, lambda _: app.consumer is not None and app.consumer.live)
        assert await answer() == await truth()
        hits = _hits(app)
        assert await answer() == await truth()
        assert _hits(app) > hits  # cached

        redis_server.kill()
        await eventually(lambda: _degraded(app), bool)
        first = await desk.place(room, "A", _at(room, 14))
        misses = sample(app, "holdfast_availability_cache_misses_total", reason="degraded")
        assert await answer() == await truth()  # at once, from Postgres
        assert sample(app, "holdfast_availability_cache_misses_total", reason="degraded") > misses

        redis_server.start()  # empty, as after a crash without persistence
        await eventually(lambda: _degraded(app), lambda degraded: not degraded)
        assert await answer() == await truth()
        hits = _hits(app)
        assert await answer() == await truth()
        assert _hits(app) > hits  # from the cache again

        before = await answer()
        await desk.release(room, first)
        await desk.place(room, "B", _at(room, 18))
        want = await truth()  # the rows change no more
        assert want != before
        await eventually(answer, lambda now_seen: now_seen == want)


async def _degraded(app: AvailabilityApp) -> bool:
    return sample(app, "holdfast_availability_degraded") == 1


def _at(room: WindowedResource, hour: int) -> Interval:
    start = datetime.combine(DAY, time(hour), tzinfo=room.zone)
    return Interval(start, start + 2 * HOUR)
