"""What every service offers: health, reflection, rich errors with the
correlation id, and ABORTED with a retry hint when a lock is not granted."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from holdfast.contracts.booking.v1 import booking_pb2
from holdfast.platform.context import correlation_id_var
from holdfast.platform.grpc_server import open_channel
from services.booking.repository import BookingRepository
from services.booking.server import BookingApp
from tests.support.booking import BookingClient, error_of
from tests.support.services import own_booking_app


async def test_health_reports_each_service_serving(channel: grpc.aio.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in (
        "",
        "holdfast.booking.v1.BookingService",
        "holdfast.booking.v1.InventoryService",
    ):
        response = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert response.status == health_pb2.HealthCheckResponse.SERVING, service


async def test_reflection_lists_the_services(channel: grpc.aio.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    call = stub.ServerReflectionInfo()
    await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
    response = await call.read()
    await call.done_writing()
    names = {s.name for s in response.list_services_response.service}
    assert {
        "holdfast.booking.v1.BookingService",
        "holdfast.booking.v1.InventoryService",
        "grpc.health.v1.Health",
    } <= names


async def test_errors_carry_the_callers_correlation_id(client: BookingClient) -> None:
    call = client.booking.GetHold(
        booking_pb2.GetHoldRequest(hold_id="00000000-0000-0000-0000-000000000001"),
        metadata=(*client.md, ("x-request-id", "req-abc-123")),
    )
    try:
        await call
    except grpc.aio.AioRpcError as error:
        trailing = dict(error.trailing_metadata() or ())
    error_details = await error_of(
        client.booking.GetHold(
            booking_pb2.GetHoldRequest(hold_id="00000000-0000-0000-0000-000000000001"),
            metadata=(*client.md, ("x-correlation-id", "corr-42")),
        )
    )
    assert trailing["x-correlation-id"] == "req-abc-123"
    assert error_details.reason == "HOLD_NOT_FOUND"
    assert error_details.metadata is not None
    assert error_details.metadata["correlation_id"] == "corr-42"


@pytest.fixture
async def impatient_client(migrated_database: str, tenant: str) -> AsyncIterator[BookingClient]:
    """A booking service that waits only 200 ms for a row lock."""
    async with own_booking_app(migrated_database, tenant, lock_timeout_ms=200) as client:
        yield client


async def test_lock_timeout_is_aborted_with_a_retry_hint(
    impatient_client: BookingClient, db: asyncpg.Pool
) -> None:
    client = impatient_client
    resource, (slot,) = await client.resource_with_slots(capacity=5)
    async with db.acquire() as conn, conn.transaction():
        await conn.execute("SELECT 1 FROM slots WHERE id = $1::uuid FOR UPDATE", slot.slot_id)
        error = await error_of(client.hold(resource.resource_id, [slot.slot_id]))

    assert (error.code, error.reason) == (grpc.StatusCode.ABORTED, "LOCK_TIMEOUT")
    assert error.retry_after is not None
    assert error.retry_after > 0
    # Once the lock is gone the same request goes through.
    hold = await client.hold(resource.resource_id, [slot.slot_id])
    assert hold.status == booking_pb2.HOLD_STATUS_HELD
    assert (await client.slot(resource.resource_id, slot.slot_id)).held == 1


async def test_concurrent_calls_do_not_mix_correlation_ids(client: BookingClient) -> None:
    async def correlation_of(i: int) -> str:
        details = await error_of(
            client.booking.GetHold(
                booking_pb2.GetHoldRequest(hold_id=f"00000000-0000-0000-0000-{i:012d}"),
                metadata=(*client.md, ("x-correlation-id", f"c-{i}")),
            )
        )
        assert details.metadata is not None
        return details.metadata["correlation_id"]

    seen = await asyncio.gather(*(correlation_of(i) for i in range(50)))
    assert seen == [f"c-{i}" for i in range(50)]


async def test_channels_pass_the_current_correlation_id_on(booking_app: BookingApp) -> None:
    async with open_channel(f"127.0.0.1:{booking_app.port}") as channel:
        client = BookingClient.on(channel, "t-propagation")
        token = correlation_id_var.set("from-the-caller")
        try:
            error = await error_of(
                client.booking.GetHold(
                    booking_pb2.GetHoldRequest(hold_id=str(uuid.uuid4())), metadata=client.md
                )
            )
        finally:
            correlation_id_var.reset(token)
    assert error.metadata is not None
    assert error.metadata["correlation_id"] == "from-the-caller"


async def test_unexpected_failures_hide_internals_but_give_the_correlation_id(
    client: BookingClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object) -> None:
        raise RuntimeError('relation "holds" secret detail')

    # The one place this suite swaps code: an unexpected bug, not the database.
    monkeypatch.setattr(BookingRepository, "get_hold", broken)

    error = await error_of(
        client.booking.GetHold(
            booking_pb2.GetHoldRequest(hold_id=str(uuid.uuid4())),
            metadata=(*client.md, ("x-correlation-id", "corr-internal")),
        )
    )

    assert (error.code, error.reason) == (grpc.StatusCode.INTERNAL, "INTERNAL")
    assert "corr-internal" in error.message
    assert "secret" not in error.message
    assert "holds" not in error.message
