"""A slot's capacity: 0 when asked for 0, the resource's default when not
given, over gRPC and over HTTP; a slot of capacity 0 sells nothing."""

from __future__ import annotations

import uuid
from datetime import timedelta

import asyncpg
import grpc
import httpx

from holdfast.contracts.booking.v1 import inventory_pb2
from holdfast.platform.proto_time import time_range
from holdfast.tenancy.keys import KeyRepository
from tests.support.booking import BASE_TIME, BookingClient, error_of
from tests.support.gateway import key_for, problem_of


def spec(hour: int, capacity: int | None) -> inventory_pb2.SlotSpec:
    window = time_range(BASE_TIME + timedelta(hours=hour), BASE_TIME + timedelta(hours=hour + 1))
    return inventory_pb2.SlotSpec(time_range=window, capacity=capacity)


async def test_grpc_capacity_zero_is_zero_and_unset_is_the_default(
    client: BookingClient, db: asyncpg.Pool
) -> None:
    resource = await client.resource(capacity=6)

    made = await client.inventory.CreateSlots(
        inventory_pb2.CreateSlotsRequest(
            resource_id=resource.resource_id, slots=[spec(0, 0), spec(1, None), spec(2, 3)]
        ),
        metadata=client.md,
    )
    sold_out = await error_of(client.hold(resource.resource_id, [made.slots[0].slot_id]))

    assert [s.capacity for s in made.slots] == [0, 6, 3]
    assert [s.available for s in made.slots] == [0, 6, 3]
    stored = await db.fetch(
        "SELECT capacity FROM slots WHERE resource_id = $1 ORDER BY starts_at",
        uuid.UUID(resource.resource_id),
    )
    assert [r["capacity"] for r in stored] == [0, 6, 3]
    assert (sold_out.code, sold_out.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "SOLD_OUT")


async def test_grpc_negative_capacity_is_still_refused(client: BookingClient) -> None:
    resource = await client.resource()

    error = await error_of(
        client.inventory.CreateSlots(
            inventory_pb2.CreateSlotsRequest(resource_id=resource.resource_id, slots=[spec(0, -1)]),
            metadata=client.md,
        )
    )

    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in error.field_violations] == ["slots[0].capacity"]


async def test_http_capacity_zero_is_zero_and_absent_or_null_is_the_default(
    api: httpx.AsyncClient, keys: KeyRepository, client: BookingClient, tenant: str
) -> None:
    auth = await key_for(keys, tenant)
    resource = await client.resource(capacity=5)
    hours = [BASE_TIME + timedelta(hours=h) for h in range(4)]

    def window(h: int) -> dict[str, str]:
        return {"start": hours[h].isoformat(), "end": (hours[h] + timedelta(hours=1)).isoformat()}

    made = await api.post(
        f"/v1/resources/{resource.resource_id}/slots",
        json={
            "slots": [
                {**window(0), "capacity": 0},
                window(1),
                {**window(2), "capacity": None},
                {**window(3), "capacity": 2},
            ]
        },
        headers=auth,
    )
    assert made.status_code == 201, made.text
    zero = made.json()["items"][0]["id"]
    hold = await api.post(
        "/v1/holds",
        json={"resource_id": resource.resource_id, "slot_ids": [zero], "quantity": 1},
        headers={**auth, "Idempotency-Key": str(uuid.uuid4())},
    )

    assert [s["capacity"] for s in made.json()["items"]] == [0, 5, 5, 2]
    problem_of(hold, 409, "SOLD_OUT")
