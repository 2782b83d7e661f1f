"""Helpers for the gateway's Server-Sent Events tests
(tests/integration/gateway/test_stream*.py): subscribing, reading the held
count, holding through the gateway, and a stack of the test's own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
import httpx
from redis.asyncio import Redis

from holdfast.platform.streams import AVAILABILITY_TOPIC, stream_key
from holdfast.tenancy.keys import KeyRepository
from services.availability.server import AvailabilityApp
from tests.support.gateway import Event, EventStream
from tests.support.redis_server import RedisServer
from tests.support.services import running_availability, running_booking, running_gateway

WINDOW = {"start": "2031-05-31T00:00:00Z", "end": "2031-06-30T00:00:00Z"}
RESOURCE = {
    "name": "Sunset cruise",
    "time_zone": "Europe/Lisbon",
    "price": {"currency": "EUR", "amount_minor": 3000},
    "default_capacity": 4,
}
SLOT = {"slots": [{"start": "2031-06-01T18:00:00Z", "end": "2031-06-01T20:00:00Z"}]}


@asynccontextmanager
async def subscribed(
    api: httpx.AsyncClient, resource_id: str, auth: dict[str, str], last_event_id: str | None = None
) -> AsyncIterator[EventStream]:
    headers = dict(auth)
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    async with api.stream(
        "GET", f"/v1/resources/{resource_id}/availability/stream", params=WINDOW, headers=headers
    ) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield EventStream(response)


def held(event: Event) -> int:
    assert event.event == "availability", event
    return int(event.json()["slots"][0]["held"])


async def hold(api: httpx.AsyncClient, auth: dict[str, str], resource: str, slot: str) -> None:
    response = await api.post(
        "/v1/holds",
        json={"resource_id": resource, "slot_ids": [slot], "quantity": 1},
        headers={**auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 201, response.text


@dataclass
class OwnStack:
    """Booking, availability and a gateway on a database and Redis of their own."""

    api: httpx.AsyncClient
    keys: KeyRepository
    redis: Redis
    stream: str
    availability: AvailabilityApp
    db: asyncpg.Pool


@asynccontextmanager
async def running_own_stack(
    own_database: str, redis_server: RedisServer
) -> AsyncIterator[OwnStack]:
    own = {"redis_url": redis_server.url}
    async with (
        running_booking(own_database, **own) as booking,
        running_availability(own_database, **own) as availability,
        running_gateway(
            own_database, f"127.0.0.1:{booking.port}", f"127.0.0.1:{availability.port}", **own
        ) as gateway,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}", timeout=10) as api,
        asyncpg.create_pool(own_database, min_size=1, max_size=2) as db,
    ):
        redis = Redis.from_url(redis_server.url)
        try:
            yield OwnStack(
                api,
                KeyRepository(db),
                redis,
                stream_key(gateway.settings, AVAILABILITY_TOPIC),
                availability,
                db,
            )
        finally:
            await redis.aclose()


async def resource_with_slot(api: httpx.AsyncClient, auth: dict[str, str]) -> tuple[str, str]:
    made = await api.post("/v1/resources", json=RESOURCE, headers=auth)
    assert made.status_code == 201, made.text
    slots = await api.post(f"/v1/resources/{made.json()['id']}/slots", json=SLOT, headers=auth)
    assert slots.status_code == 201, slots.text
    return made.json()["id"], slots.json()["items"][0]["id"]
