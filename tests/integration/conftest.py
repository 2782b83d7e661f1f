"""In-process booking and availability services on free ports, and clients for them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import grpc
import httpx
import pytest
from redis.asyncio import Redis

from gateway.config import GatewaySettings
from gateway.server import GatewayApp
from holdfast.tenancy.keys import KeyRepository
from services.availability.config import AvailabilitySettings
from services.availability.server import AvailabilityApp
from services.booking.config import BookingSettings
from services.booking.server import BookingApp
from services.webhooks.config import WebhooksSettings
from services.webhooks.server import WebhooksApp
from tests.support.availability import AvailabilityClient, wait_until_live
from tests.support.booking import BookingClient
from tests.support.env import REDIS_PREFIX, redis_url
from tests.support.stripe_events import OLD_SECRET, SECRET


def booking_settings(database_url: str, **overrides: object) -> BookingSettings:
    values: dict[str, object] = {
        "database_url": database_url,
        "redis_url": redis_url(),
        "redis_prefix": REDIS_PREFIX,
        "booking_port": 0,
        "booking_metrics_port": 0,
        "grpc_host": "127.0.0.1",
        "hold_ttl_min_seconds": 1,
        # Tests that need the sweeper start their own app (`sweeping_client`);
        # here it would race tests that expire holds by other means.
        "sweeper_interval_seconds": 3600,
        "db_pool_max_size": 20,
    }
    values.update(overrides)
    return BookingSettings(**values)  # type: ignore[arg-type]


def availability_settings(database_url: str, **overrides: object) -> AvailabilitySettings:
    values: dict[str, object] = {
        "database_url": database_url,
        "redis_url": redis_url(),
        "redis_prefix": REDIS_PREFIX,
        "availability_port": 0,
        "availability_metrics_port": 0,
        "grpc_host": "127.0.0.1",
        # Reads are short; several replicas run at once in some tests and
        # Postgres allows 100 connections in all.
        "db_pool_max_size": 5,
        # Short blocking reads so an outage is noticed, and a stop is quick.
        "consumer_block_ms": 200,
        "consumer_retry_max_seconds": 0.5,
    }
    values.update(overrides)
    return AvailabilitySettings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
async def booking_app(migrated_database: str, redis: Redis) -> AsyncIterator[BookingApp]:
    app = BookingApp(booking_settings(migrated_database))
    await app.start()
    yield app
    await app.stop()


@pytest.fixture(scope="session")
async def channel(booking_app: BookingApp) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{booking_app.port}") as ch:
        yield ch


@pytest.fixture
def tenant() -> str:
    """A fresh tenant per test: tests never see each other's rows."""
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def client(channel: grpc.aio.Channel, tenant: str) -> BookingClient:
    return BookingClient.on(channel, tenant)


@asynccontextmanager
async def running_booking(database_url: str, **overrides: object) -> AsyncIterator[BookingApp]:
    """A booking service of the test's own, with other settings."""
    app = BookingApp(booking_settings(database_url, **overrides))
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


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


@pytest.fixture
async def sweeping_client(migrated_database: str, tenant: str) -> AsyncIterator[BookingClient]:
    """A client of a booking service whose sweeper runs every 100 ms."""
    async with own_booking_app(migrated_database, tenant, sweeper_interval_seconds=0.1) as client:
        yield client


@asynccontextmanager
async def running_availability(
    database_url: str, **overrides: object
) -> AsyncIterator[AvailabilityApp]:
    """An availability service of the test's own, started and live."""
    app = AvailabilityApp(availability_settings(database_url, **overrides))
    await app.start()
    try:
        await wait_until_live(app)
        yield app
    finally:
        await app.stop()


@pytest.fixture(scope="session")
async def availability_app(migrated_database: str, redis: Redis) -> AsyncIterator[AvailabilityApp]:
    async with running_availability(migrated_database) as app:
        yield app


@pytest.fixture(scope="session")
async def availability_channel(
    availability_app: AvailabilityApp,
) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{availability_app.port}") as ch:
        yield ch


@pytest.fixture
def availability(
    availability_channel: grpc.aio.Channel, tenant: str, booking_app: BookingApp
) -> AvailabilityClient:
    """A client of the shared availability service, fed by the shared booking service."""
    return AvailabilityClient.on(availability_channel, tenant)


def webhooks_settings(
    database_url: str, booking_target: str, **overrides: object
) -> WebhooksSettings:
    values: dict[str, object] = {
        "database_url": database_url,
        "redis_url": redis_url(),
        "redis_prefix": REDIS_PREFIX,
        "webhooks_port": 0,
        "webhooks_http_port": 0,
        "webhooks_http_host": "127.0.0.1",
        "webhooks_metrics_port": 0,
        "grpc_host": "127.0.0.1",
        "stripe_webhook_secrets": f"{SECRET},{OLD_SECRET}",
        "booking_target": booking_target,
        "booking_call_timeout_seconds": 2.0,
        "processor_poll_interval_seconds": 0.1,
        "processor_retry_base_seconds": 0.1,
        "processor_retry_max_seconds": 0.5,
        "db_pool_max_size": 5,
    }
    values.update(overrides)
    return WebhooksSettings(**values)  # type: ignore[arg-type]


@asynccontextmanager
async def running_webhooks(
    database_url: str, booking_target: str, **overrides: object
) -> AsyncIterator[WebhooksApp]:
    app = WebhooksApp(webhooks_settings(database_url, booking_target, **overrides))
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


@pytest.fixture(scope="session")
async def webhooks_app(
    migrated_database: str, booking_app: BookingApp
) -> AsyncIterator[WebhooksApp]:
    async with running_webhooks(migrated_database, f"127.0.0.1:{booking_app.port}") as app:
        yield app


@pytest.fixture
async def stripe_http(webhooks_app: WebhooksApp) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the webhook receiver, as Stripe would be."""
    base = f"http://127.0.0.1:{webhooks_app.http_port}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        yield client


def gateway_settings(
    database_url: str, booking_target: str, availability_target: str, **overrides: object
) -> GatewaySettings:
    values: dict[str, object] = {
        "database_url": database_url,
        "redis_url": redis_url(),
        "redis_prefix": REDIS_PREFIX,
        "gateway_host": "127.0.0.1",
        "gateway_port": 0,
        "booking_target": booking_target,
        "availability_target": availability_target,
        "key_cache_seconds": 0,
        # Tests read "until the next heartbeat" to say "at once" or "while
        # nothing happened": a short one keeps them short.
        "sse_heartbeat_seconds": 0.5,
        "db_pool_max_size": 5,
    }
    values.update(overrides)
    return GatewaySettings(**values)  # type: ignore[arg-type]


@asynccontextmanager
async def running_gateway(
    database_url: str, booking_target: str, availability_target: str, **overrides: object
) -> AsyncIterator[GatewayApp]:
    app = GatewayApp(
        gateway_settings(database_url, booking_target, availability_target, **overrides)
    )
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


@pytest.fixture(scope="session")
async def gateway_app(
    migrated_database: str, booking_app: BookingApp, availability_app: AvailabilityApp
) -> AsyncIterator[GatewayApp]:
    async with running_gateway(
        migrated_database, f"127.0.0.1:{booking_app.port}", f"127.0.0.1:{availability_app.port}"
    ) as app:
        yield app


@pytest.fixture
async def api(gateway_app: GatewayApp) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the gateway, without a key."""
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{gateway_app.port}", timeout=10
    ) as client:
        yield client


@pytest.fixture(scope="session")
def keys(db: asyncpg.Pool) -> KeyRepository:
    return KeyRepository(db)
