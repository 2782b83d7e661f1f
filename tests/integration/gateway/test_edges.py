"""The gateway's edge, what it refuses before a service is called: strict JSON
and the body limit."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from holdfast.tenancy.keys import KeyRepository
from tests.support.booking import BookingClient
from tests.support.gateway import RESOURCE, key_for, oversized, problem_of

# --- strict JSON -------------------------------------------------------------


async def test_an_unknown_field_is_refused_by_name(
    api: httpx.AsyncClient, keys: KeyRepository, tenant: str, db: asyncpg.Pool
) -> None:
    auth = await key_for(keys, tenant)

    top = await api.post("/v1/resources", json={**RESOURCE, "colour": "red"}, headers=auth)
    nested = await api.post(
        "/v1/resources",
        json={**RESOURCE, "price": {**RESOURCE["price"], "vat": 23}},  # type: ignore[dict-item]
        headers=auth,
    )

    body = problem_of(top, 422, "INVALID_ARGUMENT")
    assert [e["field"] for e in body["errors"]] == ["colour"]
    assert "colour" in body["detail"]
    assert [e["field"] for e in problem_of(nested, 422)["errors"]] == ["price.vat"]
    made = await db.fetchval("SELECT count(*) FROM resources WHERE tenant_id = $1", tenant)
    assert made == 0


async def test_malformed_json_is_a_400(
    api: httpx.AsyncClient, keys: KeyRepository, tenant: str
) -> None:
    auth = await key_for(keys, tenant)
    headers = {**auth, "Content-Type": "application/json"}

    response = await api.post("/v1/resources", content=b'{"name": "Kayak",', headers=headers)

    problem_of(response, 400, "MALFORMED_JSON")


async def test_a_body_that_is_not_an_object_is_refused(
    api: httpx.AsyncClient, keys: KeyRepository, tenant: str
) -> None:
    auth = await key_for(keys, tenant)

    response = await api.post("/v1/resources", json=["Kayak"], headers=auth)

    problem_of(response, 422, "INVALID_ARGUMENT")


async def test_a_field_the_service_refuses_is_named(
    api: httpx.AsyncClient, keys: KeyRepository, tenant: str
) -> None:
    """INVALID_ARGUMENT from the booking service with its field violations."""
    auth = await key_for(keys, tenant)

    response = await api.post(
        "/v1/resources", json={**RESOURCE, "time_zone": "Mars/Olympus"}, headers=auth
    )

    body = problem_of(response, 422)
    assert "time_zone" in [e["field"] for e in body["errors"]], body
    # Said in our words, as written: not pydantic's "Value error, ..." around them.
    [detail] = [e["detail"] for e in body["errors"] if e["field"] == "time_zone"]
    assert detail == "must be an IANA time zone name, e.g. Europe/Lisbon"


async def test_an_invalid_uuid_in_the_path_is_a_422(
    api: httpx.AsyncClient, keys: KeyRepository, tenant: str
) -> None:
    auth = await key_for(keys, tenant)

    response = await api.get("/v1/holds/not-a-uuid", headers=auth)

    body = problem_of(response, 422, "INVALID_ARGUMENT")
    assert [e["field"] for e in body["errors"]] == ["path.hold_id"]


async def test_an_availability_window_without_time_zone_is_a_422(
    api: httpx.AsyncClient, keys: KeyRepository, client: BookingClient, tenant: str
) -> None:
    auth = await key_for(keys, tenant)
    resource, _ = await client.resource_with_slots()

    response = await api.get(
        f"/v1/resources/{resource.resource_id}/availability",
        params={"start": "2031-06-01T00:00:00", "end": "2031-06-02T00:00:00"},
        headers=auth,
    )

    body = problem_of(response, 422, "INVALID_ARGUMENT")
    assert [e["field"] for e in body["errors"]] == ["query.start", "query.end"]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        pytest.param("0001-01-01T00:00:00+01:00", "0001-01-02T00:00:00+01:00", id="before-year-1"),
        pytest.param("9999-12-31T22:00:00-05:00", "9999-12-31T23:00:00-05:00", id="after-9999"),
    ],
)
async def test_a_time_past_what_utc_can_hold_is_a_422(
    api: httpx.AsyncClient,
    keys: KeyRepository,
    client: BookingClient,
    tenant: str,
    start: str,
    end: str,
) -> None:
    """Valid RFC 3339 at its offset, out of range once in UTC."""
    auth = await key_for(keys, tenant)
    resource, _ = await client.resource_with_slots()
    path = f"/v1/resources/{resource.resource_id}"
    window = {"start": start, "end": end}

    answers = [
        await api.get(f"{path}/availability", params=window, headers=auth),
        await api.get(f"{path}/availability/stream", params=window, headers=auth),
        await api.post(f"{path}/slots", json={"slots": [window]}, headers=auth),
    ]

    for response in answers:
        body = problem_of(response, 422, "INVALID_ARGUMENT")
        assert "UTC" in str(body["errors"]), body


# --- body limit ----------------------------------------------------------------


async def test_a_body_over_the_limit_is_a_413_by_its_length(
    api: httpx.AsyncClient, keys: KeyRepository, tenant: str
) -> None:
    auth = await key_for(keys, tenant)
    headers = {**auth, "Content-Type": "application/json", "Idempotency-Key": "big"}

    response = await api.post("/v1/holds", content=oversized(), headers=headers)

    problem_of(response, 413, "BODY_TOO_LARGE")


async def test_a_chunked_body_over_the_limit_is_a_413(
    api: httpx.AsyncClient, keys: KeyRepository, tenant: str
) -> None:
    auth = await key_for(keys, tenant)
    headers = {**auth, "Content-Type": "application/json", "Idempotency-Key": "big"}
    data = oversized()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 8192):
            yield data[start : start + 8192]

    response = await api.post("/v1/holds", content=chunks(), headers=headers)

    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in response.request.headers
    problem_of(response, 413, "BODY_TOO_LARGE")


async def test_a_body_under_the_limit_passes(
    api: httpx.AsyncClient, keys: KeyRepository, client: BookingClient, tenant: str
) -> None:
    auth = await key_for(keys, tenant)
    resource, [slot] = await client.resource_with_slots()
    body = {"resource_id": resource.resource_id, "slot_ids": [slot.slot_id], "quantity": 1}
    headers = {**auth, "Idempotency-Key": str(uuid.uuid4()), "Content-Type": "application/json"}
    data = httpx.Request("POST", "/", json=body).content

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 16):
            yield data[start : start + 16]

    response = await api.post("/v1/holds", content=chunks(), headers=headers)

    assert response.status_code == 201, response.text
