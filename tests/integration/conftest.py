"""The integration suite's fixtures: in-process services on free ports,
shared by the run (built by tests/support/services.py, where a test that
needs a service of its own finds the same builders), and clients for them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import grpc
import httpx
import pytest
from redis.asyncio import Redis

from gateway.server import GatewayApp
from holdfast.tenancy.keys import KeyRepository
from services.availability.server import AvailabilityApp
from services.booking.server import BookingApp
from services.webhooks.server import WebhooksApp
from tests.support.availability import AvailabilityClient
from tests.support.booking import BookingClient
from tests.support.services import (
    own_booking_app,
    running_availability,
    running_booking,
    running_gateway,
    running_webhooks,
)


@pytest.fixture(scope="session")
async def booking_app(migrated_database: str, redis: Redis) -> AsyncIterator[BookingApp]:
    async with running_booking(migrated_database) as app:
        yield app


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


@pytest.fixture
async def sweeping_client(migrated_database: str, tenant: str) -> AsyncIterator[BookingClient]:
    """A client of a booking service whose sweeper runs every 100 ms."""
    async with own_booking_app(migrated_database, tenant, sweeper_interval_seconds=0.1) as client:
        yield client


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
