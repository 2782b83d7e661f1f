"""AIP-155 request ids: same id and request -> the first response; same id with
another request -> an error and nothing written."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import grpc

from holdfast.contracts.booking.v1 import inventory_pb2
from holdfast.contracts.common.v1 import money_pb2
from services.booking.server import BookingApp
from tests.support.booking import BookingClient, error_of
from tests.support.db import count_rows, slot_row


async def test_replay_returns_the_first_response(client: BookingClient, db: asyncpg.Pool) -> None:
    resource, (slot,) = await client.resource_with_slots(capacity=5)
    request_id = str(uuid.uuid4())

    first = await client.hold(resource.resource_id, [slot.slot_id], 2, request_id=request_id)
    again = await client.hold(resource.resource_id, [slot.slot_id], 2, request_id=request_id)

    assert again == first
    assert (await slot_row(db, slot.slot_id))["held"] == 2


async def test_reused_id_with_another_request_writes_nothing(
    client: BookingClient, db: asyncpg.Pool
) -> None:
    resource, (slot,) = await client.resource_with_slots(capacity=5)
    request_id = str(uuid.uuid4())
    await client.hold(resource.resource_id, [slot.slot_id], 1, request_id=request_id)
    before = await count_rows(db, client.tenant)

    error = await error_of(
        client.hold(resource.resource_id, [slot.slot_id], 3, request_id=request_id)
    )

    assert (error.code, error.reason) == (grpc.StatusCode.ALREADY_EXISTS, "REQUEST_ID_REUSED")
    assert await count_rows(db, client.tenant) == before
    assert (await slot_row(db, slot.slot_id))["held"] == 1


async def test_concurrent_duplicates_make_one_hold(client: BookingClient, db: asyncpg.Pool) -> None:
    resource, (slot,) = await client.resource_with_slots(capacity=100)
    request_id = str(uuid.uuid4())

    holds = await asyncio.gather(
        *(
            client.hold(resource.resource_id, [slot.slot_id], 3, request_id=request_id)
            for _ in range(50)
        )
    )

    assert len({h.hold_id for h in holds}) == 1
    assert all(h == holds[0] for h in holds)
    assert (await slot_row(db, slot.slot_id))["held"] == 3
    assert (await count_rows(db, client.tenant))["holds"] == 1


async def test_replay_after_selling_out_still_returns_the_hold(client: BookingClient) -> None:
    resource, (slot,) = await client.resource_with_slots(capacity=1)
    request_id = str(uuid.uuid4())
    first = await client.hold(resource.resource_id, [slot.slot_id], request_id=request_id)

    again = await client.hold(resource.resource_id, [slot.slot_id], request_id=request_id)
    other = await error_of(client.hold(resource.resource_id, [slot.slot_id]))

    assert again == first
    assert (other.code, other.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "SOLD_OUT")


async def test_create_resource_is_idempotent(client: BookingClient, db: asyncpg.Pool) -> None:
    request = inventory_pb2.CreateResourceRequest(
        name="Kayak",
        time_zone="Europe/Lisbon",
        price=money_pb2.Money(currency_code="EUR", amount_minor=4500),
        default_capacity=8,
        request_id="create-kayak-1",
    )

    first = await client.inventory.CreateResource(request, metadata=client.md)
    again = await client.inventory.CreateResource(request, metadata=client.md)

    assert again == first
    assert (await count_rows(db, client.tenant))["resources"] == 1


async def test_request_ids_are_forgotten_after_the_retention_window(
    booking_app: BookingApp, client: BookingClient, db: asyncpg.Pool
) -> None:
    resource, (slot,) = await client.resource_with_slots(capacity=5)
    first = await client.hold(resource.resource_id, [slot.slot_id], request_id="old-id")
    await db.execute(
        "UPDATE idempotency_records SET created_at = now() - interval '25 hours'"
        " WHERE tenant_id = $1",
        client.tenant,
    )
    assert booking_app.sweeper is not None

    await booking_app.sweeper.sweep_once()
    second = await client.hold(resource.resource_id, [slot.slot_id], request_id="old-id")

    assert second.hold_id != first.hold_id
    assert (await slot_row(db, slot.slot_id))["held"] == 2
