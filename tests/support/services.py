"""The services in the test's own process, on free ports: the one builder
the integration fixtures (tests/integration/conftest.py) and the tests that
need a service of their own call.

Each service runs with the settings of `_TEST_SETTINGS` on top of its ports
(every port setting of holdfast.registry, 0: a free one), the run's database
and Redis; a test's `overrides` win over both."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol, TypeVar

import grpc

from gateway.config import GatewaySettings
from gateway.server import GatewayApp
from holdfast.registry import BY_NAME
from services.availability.config import AvailabilitySettings
from services.availability.server import AvailabilityApp
from services.booking.config import BookingSettings
from services.booking.server import BookingApp
from services.webhooks.config import WebhooksSettings
from services.webhooks.server import WebhooksApp
from tests.support.availability import wait_until_live
from tests.support.booking import BookingClient
from tests.support.env import REDIS_PREFIX, redis_url
from tests.support.stripe_events import OLD_SECRET, SECRET

# Per service, what it runs with in the tests besides its ports and URLs.
_TEST_SETTINGS: dict[str, dict[str, object]] = {
    "booking": {
        "grpc_host": "127.0.0.1",
        "hold_ttl_min_seconds": 1,
        # Tests that need the sweeper start their own app (`sweeping_client`);
        # here it would race tests that expire holds by other means.
        "sweeper_interval_seconds": 3600,
        "db_pool_max_size": 20,
    },
    "availability": {
        "grpc_host": "127.0.0.1",
        # Reads are short; several replicas run at once in some tests and
        # Postgres allows 100 connections in all.
        "db_pool_max_size": 5,
        # Short blocking reads so an outage is noticed, and a stop is quick.
        "consumer_block_ms": 200,
        "consumer_retry_max_seconds": 0.5,
    },
    "webhooks": {
        "webhooks_http_host": "127.0.0.1",
        "grpc_host": "127.0.0.1",
        "stripe_webhook_secrets": f"{SECRET},{OLD_SECRET}",
        "booking_call_timeout_seconds": 2.0,
        "processor_poll_interval_seconds": 0.1,
        "processor_retry_base_seconds": 0.1,
        "processor_retry_max_seconds": 0.5,
        "db_pool_max_size": 5,
    },
    "gateway": {
        "gateway_host": "127.0.0.1",
        "key_cache_seconds": 0,
        # Tests read "until the next heartbeat" to say "at once" or "while
        # nothing happened": a short one keeps them short.
        "sse_heartbeat_seconds": 0.5,
        "db_pool_max_size": 5,
    },
}


def _values(name: str, database_url: str, overrides: dict[str, object]) -> dict[str, object]:
    return {
        "database_url": database_url,
        "redis_url": redis_url(),
        "redis_prefix": REDIS_PREFIX,
        **{setting: 0 for setting in BY_NAME[name].port_settings},
        **_TEST_SETTINGS[name],
        **overrides,
    }


def booking_settings(database_url: str, **overrides: object) -> BookingSettings:
    return BookingSettings(**_values("booking", database_url, overrides))  # type: ignore[arg-type]


def availability_settings(database_url: str, **overrides: object) -> AvailabilitySettings:
    values = _values("availability", database_url, overrides)
    return AvailabilitySettings(**values)  # type: ignore[arg-type]


def webhooks_settings(
    database_url: str, booking_target: str, **overrides: object
) -> WebhooksSettings:
    values = _values("webhooks", database_url, {"booking_target": booking_target, **overrides})
    return WebhooksSettings(**values)  # type: ignore[arg-type]


def gateway_settings(
    database_url: str, booking_target: str, availability_target: str, **overrides: object
) -> GatewaySettings:
    targets = {"booking_target": booking_target, "availability_target": availability_target}
    values = _values("gateway", database_url, {**targets, **overrides})
    return GatewaySettings(**values)  # type: ignore[arg-type]


class _App(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


App = TypeVar("App", bound=_App)


@asynccontextmanager
async def running(app: App) -> AsyncIterator[App]:
    """`app` started, and stopped afterwards."""
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


@asynccontextmanager
async def running_booking(database_url: str, **overrides: object) -> AsyncIterator[BookingApp]:
    """A booking service of the test's own, with other settings."""
    async with running(BookingApp(booking_settings(database_url, **overrides))) as app:
        yield app


@asynccontextmanager
async def own_booking_app(
    database_url: str, tenant: str, **overrides: object
) -> AsyncIterator[BookingClient]:
    """A booking service of the test's own, with other settings, and a client for it."""
    async with (
        running_booking(database_url, **overrides) as app,
        grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel,
    ):
        yield BookingClient.on(channel, tenant)


@asynccontextmanager
async def running_availability(
    database_url: str, **overrides: object
) -> AsyncIterator[AvailabilityApp]:
    """An availability service of the test's own, started and live."""
    app = AvailabilityApp(availability_settings(database_url, **overrides))
    async with running(app):
        await wait_until_live(app)
        yield app


@asynccontextmanager
async def running_webhooks(
    database_url: str, booking_target: str, **overrides: object
) -> AsyncIterator[WebhooksApp]:
    app = WebhooksApp(webhooks_settings(database_url, booking_target, **overrides))
    async with running(app):
        yield app


@asynccontextmanager
async def running_gateway(
    database_url: str, booking_target: str, availability_target: str, **overrides: object
) -> AsyncIterator[GatewayApp]:
    settings = gateway_settings(database_url, booking_target, availability_target, **overrides)
    async with running(GatewayApp(settings)) as app:
        yield app
