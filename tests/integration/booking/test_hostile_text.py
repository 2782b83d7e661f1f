"""Text Postgres cannot store (a NUL character) is refused by name, over
gRPC and HTTP, and nothing is written: never a 500 (schemathesis found it)."""

from __future__ import annotations

import asyncpg
import grpc
import httpx

from holdfast.contracts.booking.v1 import inventory_pb2
from holdfast.contracts.common.v1 import money_pb2
from holdfast.tenancy.keys import KeyRepository
from tests.support.booking import BookingClient, error_of
from tests.support.gateway import key_for, problem_of


async def test_a_nul_character_in_text_is_an_invalid_argument(
    client: BookingClient, db: asyncpg.Pool, tenant: str
) -> None:
    error = await error_of(
        client.inventory.CreateResource(
            inventory_pb2.CreateResourceRequest(
                name="Kayak\x00tour",
                time_zone="Europe/Lisbon",
                price=money_pb2.Money(currency_code="EUR", amount_minor=100),
                default_capacity=2,
            ),
            metadata=client.md,
        )
    )
    resource, [slot] = await client.resource_with_slots()
    hold = await error_of(client.hold(resource.resource_id, [slot.slot_id], customer_ref="a\x00"))

    assert error.code == grpc.StatusCode.INVALID_ARGUMENT, error
    assert [f for f, _ in error.field_violations] == ["name"]
    assert hold.code == grpc.StatusCode.INVALID_ARGUMENT, hold
    assert [f for f, _ in hold.field_violations] == ["customer_ref"]
    count = await db.fetchval("SELECT count(*) FROM resources WHERE tenant_id = $1", tenant)
    assert count == 1  # only the one made after


async def test_a_nul_character_over_http_is_a_422(
    api: httpx.AsyncClient, keys: KeyRepository, tenant: str
) -> None:
    auth = await key_for(keys, tenant)
    resource = {
        "name": "Kayak\u0000tour",
        "time_zone": "Europe/Lisbon",
        "price": {"currency": "EUR", "amount_minor": 100},
        "default_capacity": 2,
    }

    response = await api.post("/v1/resources", json=resource, headers=auth)

    body = problem_of(response, 422, "INVALID_ARGUMENT")
    assert [e["field"] for e in body["errors"]] == ["name"]
