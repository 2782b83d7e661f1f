"""Window holds over HTTP: POST /v1/holds with a window, the hold's JSON
showing its window, and a refused window naming the JSON field."""

from __future__ import annotations

import asyncpg
import httpx

from holdfast.tenancy.keys import KeyRepository
from tests.support.gateway import key_for, problem_of
from tests.support.window_holds import windowed_resource, written_rows


async def test_a_table_for_three_at_half_past_seven(
    api: httpx.AsyncClient, keys: KeyRepository, db: asyncpg.Pool, tenant: str
) -> None:
    auth = await key_for(keys, tenant)
    room = await windowed_resource(db, tenant, price_minor=2500)
    body = {
        "resource_id": room.resource_id,
        "window": {"start_time": "2031-06-02T19:30:00+02:00", "end_time": "2031-06-02T19:30:00Z"},
        "party_size": 3,
    }

    held = await api.post("/v1/holds", json=body, headers={**auth, "Idempotency-Key": "w1"})
    again = await api.post("/v1/holds", json=body, headers={**auth, "Idempotency-Key": "w1"})
    fetched = await api.get(f"/v1/holds/{held.json()['id']}", headers=auth)
    named = await api.post(
        "/v1/holds",
        json={
            "resource_id": room.resource_id,
            "window": body["window"],
            "unit_id": room.units["T6"],
        },
        headers={**auth, "Idempotency-Key": "w2"},
    )

    assert held.status_code == 201, held.text
    assert (again.status_code, again.json()) == (201, held.json())
    assert fetched.json() == held.json()
    hold = held.json()
    assert (hold["status"], hold["quantity"], hold["lines"]) == ("held", 3, [])
    assert hold["total"] == {"currency": "EUR", "amount_minor": 2500}
    assert hold["window"] == {
        "start_time": "2031-06-02T17:30:00Z",
        "end_time": "2031-06-02T19:30:00Z",
        "unit_id": room.units["T4"],
        "unit_name": "T4",
        "guarded_start_time": "2031-06-02T17:30:00Z",
        "guarded_end_time": "2031-06-02T19:45:00Z",
    }
    assert named.status_code == 201, named.text
    assert (named.json()["window"]["unit_name"], named.json()["quantity"]) == ("T6", 6)


async def test_a_refused_window_names_the_json_field(
    api: httpx.AsyncClient, keys: KeyRepository, db: asyncpg.Pool, tenant: str
) -> None:
    auth = await key_for(keys, tenant)
    room = await windowed_resource(db, tenant)
    before = await written_rows(db, tenant)
    window = {"start_time": "2031-06-02T17:05:00Z", "end_time": "2031-06-02T19:05:00Z"}

    off_grid = await api.post(
        "/v1/holds",
        json={"resource_id": room.resource_id, "window": window, "party_size": 2},
        headers={**auth, "Idempotency-Key": "bad-1"},
    )
    too_large = await api.post(
        "/v1/holds",
        json={
            "resource_id": room.resource_id,
            "window": {"start_time": "2031-06-02T17:00:00Z", "end_time": "2031-06-02T19:00:00Z"},
            "party_size": 9,
        },
        headers={**auth, "Idempotency-Key": "bad-2"},
    )
    slots_too = await api.post(
        "/v1/holds",
        json={"resource_id": room.resource_id, "window": window, "quantity": 2},
        headers={**auth, "Idempotency-Key": "bad-3"},
    )

    assert [e["field"] for e in problem_of(off_grid, 422)["errors"]] == ["window.start_time"]
    assert [e["field"] for e in problem_of(too_large, 422)["errors"]] == ["party_size"]
    fields = {e["field"] for e in problem_of(slots_too, 422)["errors"]}
    assert fields == {"quantity", "party_size"}  # a window hold's party, not a quantity
    assert await written_rows(db, tenant) == before


async def test_a_hold_without_slots_or_window_asks_for_slots(
    api: httpx.AsyncClient, keys: KeyRepository, tenant: str
) -> None:
    auth = await key_for(keys, tenant)
    body = {"resource_id": "5d3ac1b5-4f60-4a5c-9d3b-111111111111", "slot_ids": [], "quantity": 1}

    refused = await api.post("/v1/holds", json=body, headers={**auth, "Idempotency-Key": "s1"})

    assert [e["field"] for e in problem_of(refused, 422)["errors"]] == ["slot_ids"]
