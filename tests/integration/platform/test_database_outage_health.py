"""Readiness follows the database while liveness stays up.

Every service runs on a Postgres of the test's own
(tests/support/postgres_server.py), which the test stops and starts; the
run's shared Postgres is never touched. While it is away the booking and webhooks
services are not ready; availability stays ready on its cache until Redis
goes too.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devtools.engines import free_port
from services.availability.server import SERVICE_NAME as AVAILABILITY_SERVICE
from services.booking.server import SERVICE_NAMES as BOOKING_SERVICES
from services.booking.server import BookingApp
from services.webhooks.server import SERVICE_NAME as WEBHOOKS_SERVICE
from services.webhooks.server import WebhooksApp
from tests.support.availability import eventually
from tests.support.metrics import sample
from tests.support.postgres_server import PostgresServer
from tests.support.redis_server import RedisServer
from tests.support.services import (
    running_availability,
    running_booking,
    running_webhooks,
)

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
