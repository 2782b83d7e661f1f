"""The HTTP gateway over real HTTP, in front of real services."""

from __future__ import annotations

import httpx

from holdfast.tenancy.keys import KeyRepository
from tests.support.booking import BookingClient
from tests.support.gateway import key_for

WINDOW = {"start": "2031-05-31T00:00:00Z", "end": "2031-06-30T00:00:00Z"}


async def test_browse_hold_and_release(
    api: httpx.AsyncClient, keys: KeyRepository, client: BookingClient, tenant: str
) -> None:
    auth = await key_for(keys, tenant)
    resource, [slot] = await client.resource_with_slots(capacity=3)

    listed = await api.get("/v1/resources", headers=auth)
    available = await api.get(
        f"/v1/resources/{resource.resource_id}/availability", params=WINDOW, headers=auth
    )
    body = {"resource_id": resource.resource_id, "slot_ids": [slot.slot_id], "quantity": 2}
    held = await api.post("/v1/holds", json=body, headers={**auth, "Idempotency-Key": "k1"})
    again = await api.post("/v1/holds", json=body, headers={**auth, "Idempotency-Key": "k1"})
    released = await api.delete(f"/v1/holds/{held.json()['id']}", headers=auth)

    assert listed.status_code == 200
    assert [r["id"] for r in listed.json()["items"]] == [resource.resource_id]
    assert available.json()["slots"][0]["available"] == 3
    assert held.status_code == 201, held.text
    assert (again.status_code, again.json()) == (201, held.json())
    assert held.json()["status"] == "held"
    assert released.json()["status"] == "released"
    assert held.headers["RateLimit-Limit"]
    assert held.headers["X-Request-Id"]
