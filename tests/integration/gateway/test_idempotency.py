"""Idempotency over HTTP: `POST /v1/holds` needs an `Idempotency-Key`; the
same key and body give the first answer again, the same key with another
body is refused, and either way one hold exists."""

from __future__ import annotations

import uuid

import asyncpg
import httpx

from holdfast.tenancy.keys import KeyRepository
from tests.support.booking import BookingClient
from tests.support.gateway import key_for, problem_of


async def holds_of(db: asyncpg.Pool, tenant: str) -> list[str]:
    rows = await db.fetch("SELECT id FROM holds WHERE tenant_id = $1", tenant)
    return [str(row["id"]) for row in rows]


async def test_a_hold_without_an_idempotency_key_is_refused(
    api: httpx.AsyncClient,
    keys: KeyRepository,
    client: BookingClient,
    tenant: str,
    db: asyncpg.Pool,
) -> None:
    auth = await key_for(keys, tenant)
    resource, [slot] = await client.resource_with_slots(capacity=3)
    body = {"resource_id": resource.resource_id, "slot_ids": [slot.slot_id], "quantity": 1}

    response = await api.post("/v1/holds", json=body, headers=auth)
    empty = await api.post("/v1/holds", json=body, headers={**auth, "Idempotency-Key": ""})

    problem = problem_of(response, 422, "INVALID_ARGUMENT")
    assert [e["field"] for e in problem["errors"]] == ["header.idempotency-key"]
    assert "idempotency-key" in problem["detail"]
    assert [e["field"] for e in problem_of(empty, 422)["errors"]] == ["header.idempotency-key"]
    assert await holds_of(db, tenant) == []


async def test_a_replay_gets_the_first_answer_and_one_hold_exists(
    api: httpx.AsyncClient,
    keys: KeyRepository,
    client: BookingClient,
    tenant: str,
    db: asyncpg.Pool,
) -> None:
    auth = await key_for(keys, tenant)
    resource, [slot] = await client.resource_with_slots(capacity=3)
    body = {"resource_id": resource.resource_id, "slot_ids": [slot.slot_id], "quantity": 2}
    headers = {**auth, "Idempotency-Key": f"order-{uuid.uuid4()}"}

    first = await api.post("/v1/holds", json=body, headers=headers)
    again = await api.post("/v1/holds", json=body, headers=headers)
    # Another key of the same tenant replays too: the key is the tenant's.
    other_key = await key_for(keys, tenant)
    from_other_key = await api.post(
        "/v1/holds", json=body, headers={**other_key, "Idempotency-Key": headers["Idempotency-Key"]}
    )

    assert first.status_code == 201, first.text
    assert (again.status_code, again.json()) == (201, first.json())
    assert (from_other_key.status_code, from_other_key.json()) == (201, first.json())
    assert await holds_of(db, tenant) == [first.json()["id"]]
    held = await db.fetchval("SELECT held FROM slots WHERE id = $1::uuid", slot.slot_id)
    assert held == 2


async def test_the_same_key_with_another_body_is_refused(
    api: httpx.AsyncClient,
    keys: KeyRepository,
    client: BookingClient,
    tenant: str,
    db: asyncpg.Pool,
) -> None:
    auth = await key_for(keys, tenant)
    resource, [slot] = await client.resource_with_slots(capacity=3)
    body = {"resource_id": resource.resource_id, "slot_ids": [slot.slot_id], "quantity": 1}
    headers = {**auth, "Idempotency-Key": f"order-{uuid.uuid4()}"}

    first = await api.post("/v1/holds", json=body, headers=headers)
    other = await api.post("/v1/holds", json={**body, "quantity": 2}, headers=headers)
    renamed = await api.post("/v1/holds", json={**body, "customer_ref": "x"}, headers=headers)

    assert first.status_code == 201, first.text
    problem_of(other, 409, "REQUEST_ID_REUSED")
    problem_of(renamed, 409, "REQUEST_ID_REUSED")
    assert await holds_of(db, tenant) == [first.json()["id"]]
    held = await db.fetchval("SELECT held FROM slots WHERE id = $1::uuid", slot.slot_id)
    assert held == 1


async def test_idempotency_keys_of_two_tenants_never_meet(
    api: httpx.AsyncClient,
    keys: KeyRepository,
    client: BookingClient,
    tenant: str,
    db: asyncpg.Pool,
) -> None:
    """B using the same Idempotency-Key as A gets a hold of its own, never A's."""
    auth = await key_for(keys, tenant)
    resource, [slot] = await client.resource_with_slots(capacity=3)
    body = {"resource_id": resource.resource_id, "slot_ids": [slot.slot_id], "quantity": 1}
    shared = f"order-{uuid.uuid4()}"
    other_tenant = f"t-{uuid.uuid4().hex[:12]}"
    theirs = BookingClient(client.booking, client.inventory, other_tenant)
    their_resource, [their_slot] = await theirs.resource_with_slots(capacity=3)
    their_auth = await key_for(keys, other_tenant)
    their_body = {
        "resource_id": their_resource.resource_id,
        "slot_ids": [their_slot.slot_id],
        "quantity": 1,
    }

    mine = await api.post("/v1/holds", json=body, headers={**auth, "Idempotency-Key": shared})
    their = await api.post(
        "/v1/holds", json=their_body, headers={**their_auth, "Idempotency-Key": shared}
    )

    assert (mine.status_code, their.status_code) == (201, 201), (mine.text, their.text)
    assert mine.json()["id"] != their.json()["id"]
    assert await holds_of(db, other_tenant) == [their.json()["id"]]
