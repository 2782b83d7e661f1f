"""The hold TTL has one source, the booking service's settings: the gateway
takes any positive whole number of seconds and passes the booking service's
answer back, naming the field its caller sent."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime

import grpc
import httpx
import pytest

from holdfast.tenancy.keys import KeyRepository
from services.availability.server import AvailabilityApp
from tests.support.booking import BookingClient
from tests.support.gateway import key_for
from tests.support.services import running_booking, running_gateway

LONGEST = 7200  # longer than the booking service's default longest (3600)


@pytest.fixture
async def stack(
    migrated_database: str, availability_app: AvailabilityApp, keys: KeyRepository
) -> AsyncIterator[tuple[httpx.AsyncClient, BookingClient, dict[str, str]]]:
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    async with (
        running_booking(migrated_database, hold_ttl_max_seconds=LONGEST) as booking,
        running_gateway(
            migrated_database, f"127.0.0.1:{booking.port}", f"127.0.0.1:{availability_app.port}"
        ) as gateway,
        grpc.aio.insecure_channel(f"127.0.0.1:{booking.port}") as channel,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}", timeout=10) as api,
    ):
        yield api, BookingClient.on(channel, tenant), await key_for(keys, tenant)


async def test_the_booking_services_range_decides(
    stack: tuple[httpx.AsyncClient, BookingClient, dict[str, str]],
) -> None:
    api, client, auth = stack
    resource, [slot] = await client.resource_with_slots(capacity=3)
    body = {"resource_id": resource.resource_id, "slot_ids": [slot.slot_id], "quantity": 1}

    async def hold(ttl_seconds: int) -> httpx.Response:
        return await api.post(
            "/v1/holds",
            json={**body, "ttl_seconds": ttl_seconds},
            headers={**auth, "Idempotency-Key": f"ttl-{ttl_seconds}"},
        )

    longest = await hold(LONGEST)
    too_long = await hold(LONGEST + 1)
    not_positive = await hold(0)

    assert longest.status_code == 201, longest.text
    held = longest.json()
    lifetime = datetime.fromisoformat(held["expires_at"]) - datetime.fromisoformat(
        held["created_at"]
    )
    assert lifetime.total_seconds() == pytest.approx(LONGEST, abs=5)
    assert too_long.status_code == 422, too_long.text
    assert too_long.json()["errors"] == [
        {"field": "ttl_seconds", "detail": f"must be between 1s and {LONGEST}s"}
    ]
    assert not_positive.status_code == 422, not_positive.text
    assert [e["field"] for e in not_positive.json()["errors"]] == ["ttl_seconds"]
