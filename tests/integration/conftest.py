"""An in-process booking service on a free port, and clients for it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import grpc
import pytest

from holdfast.booking.v1 import booking_pb2_grpc, inventory_pb2_grpc
from services.booking.config import BookingSettings
from services.booking.server import BookingApp
from tests.support.booking import BookingClient


def booking_settings(database_url: str, **overrides: object) -> BookingSettings:
    values: dict[str, object] = {
        "database_url": database_url,
        "booking_port": 0,
        "grpc_host": "127.0.0.1",
        "hold_ttl_min_seconds": 1,
        "sweeper_interval_seconds": 0.2,
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
    return BookingClient(
        booking_pb2_grpc.BookingServiceStub(channel),
        inventory_pb2_grpc.InventoryServiceStub(channel),
        tenant,
    )
