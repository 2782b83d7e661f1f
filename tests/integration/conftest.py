"""An in-process booking service on a free port, and clients for it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
import pytest

from services.booking.config import BookingSettings
from services.booking.server import BookingApp
from tests.support.booking import BookingClient


def booking_settings(database_url: str, **overrides: object) -> BookingSettings:
    values: dict[str, object] = {
        "database_url": database_url,
        "booking_port": 0,
        "grpc_host": "127.0.0.1",
        "hold_ttl_min_seconds": 1,
        # Tests that need the sweeper start their own app (`sweeping_client`);
        # here it would race tests that expire holds by other means.
        "sweeper_interval_seconds": 3600,
        "db_pool_max_size": 20,
    }
    values.update(overrides)
    return BookingSettings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
async def booking_app(migrated_database: str) -> AsyncIterator[BookingApp]:
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
async def own_booking_app(
    database_url: str, tenant: str, **overrides: object
) -> AsyncIterator[BookingClient]:
    """A booking service of the test's own, with other settings, and a client for it."""
    app = BookingApp(booking_settings(database_url, **overrides))
    await app.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            yield BookingClient.on(channel, tenant)
    finally:
        await app.stop()


@pytest.fixture
async def sweeping_client(migrated_database: str, tenant: str) -> AsyncIterator[BookingClient]:
    """A client of a booking service whose sweeper runs every 100 ms."""
    async with own_booking_app(migrated_database, tenant, sweeper_interval_seconds=0.1) as client:
        yield client
