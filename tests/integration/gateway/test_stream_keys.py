"""Live availability over Server-Sent Events: a stream ends with its key, the
streams per key are capped, and a change costs one read per window however
many subscribe."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from holdfast.tenancy.keys import KeyRepository
from services.availability.server import AvailabilityApp
from services.booking.server import BookingApp
from tests.support.availability import eventually, settled
from tests.support.booking import BookingClient
from tests.support.gateway import EventStream, key_for, problem_of
from tests.support.redis_server import RedisServer
from tests.support.services import running_gateway
from tests.support.sse import (
    WINDOW,
    OwnStack,
    held,
    hold,
    resource_with_slot,
    running_own_stack,
    subscribed,
)


@pytest.fixture
async def own_stack(own_database: str, redis_server: RedisServer) -> AsyncIterator[OwnStack]:
    async with running_own_stack(own_database, redis_server) as stack:
        yield stack


# --- keys, caps and the cost of a change -------------------------------------


@asynccontextmanager
async def capped_gateway(
    database: str, booking: BookingApp, availability: AvailabilityApp, streams_per_key: int
) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        running_gateway(
            database,
            f"127.0.0.1:{booking.port}",
            f"127.0.0.1:{availability.port}",
            sse_max_streams_per_key=streams_per_key,
        ) as gateway,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}", timeout=10) as api,
    ):
        yield api


@pytest.mark.parametrize("how", ["revoked", "expired"])
async def test_a_stream_ends_when_its_key_stops_being_valid(
    api: httpx.AsyncClient, keys: KeyRepository, client: BookingClient, tenant: str, how: str
) -> None:
    """Noticed within the key cache time (0 for the test gateway) plus a
    heartbeat: the stream says why, and closes."""
    await keys.create_tenant(tenant, tenant)
    expires = datetime.now(UTC) + timedelta(seconds=3) if how == "expired" else None
    made = await keys.create_key(tenant, ("availability:read",), expires_at=expires)
    auth = {"Authorization": f"Bearer {made.token}"}
    resource, _ = await client.resource_with_slots()

    async with subscribed(api, resource.resource_id, auth) as stream:
        first = await stream.next_event()
        if how == "revoked":
            await keys.revoke(made.key.id)
        last = await stream.until_end()

    assert first.event == "availability"
    assert [e.event for e in last][-1:] == ["closed"], last
    assert last[-1].json()["reason"] == "UNAUTHENTICATED"
    assert how in last[-1].json()["detail"]


async def test_streams_per_key_are_capped_and_freed_when_they_end(
    migrated_database: str,
    booking_app: BookingApp,
    availability_app: AvailabilityApp,
    keys: KeyRepository,
    client: BookingClient,
    tenant: str,
) -> None:
    auth, other_key = await key_for(keys, tenant), await key_for(keys, tenant)
    resource, _ = await client.resource_with_slots()
    path = f"/v1/resources/{resource.resource_id}/availability/stream"

    async def another(api: httpx.AsyncClient) -> httpx.Response:
        """Opens a stream and leaves at once: the answer, read whole unless a stream."""
        async with api.stream("GET", path, params=WINDOW, headers=auth) as response:
            if response.status_code != 200:
                await response.aread()
            return response

    async with capped_gateway(migrated_database, booking_app, availability_app, 2) as api:
        async with subscribed(api, resource.resource_id, auth) as one:
            await one.next_event()
            async with subscribed(api, resource.resource_id, auth) as two:
                await two.next_event()
                third = await another(api)
                async with subscribed(api, resource.resource_id, other_key) as elsewhere:
                    other_keys_own = await elsewhere.next_event()
        # Both ended (their client went away): their places are free again.
        freed = await eventually(lambda: another(api), lambda r: r.status_code == 200, within=10)

    body = problem_of(third, 429, "TOO_MANY_STREAMS")
    assert "2" in body["detail"]
    assert int(third.headers["Retry-After"]) >= 1
    assert other_keys_own.event == "availability"
    assert freed.status_code == 200


def availability_reads(app: AvailabilityApp) -> float:
    """GetAvailability calls the availability service has answered, counted
    by the service itself."""
    return sum(
        s.value
        for family in app.metrics.registry.collect()
        for s in family.samples
        if s.name == "holdfast_grpc_requests_total" and "GetAvailability" in s.labels["method"]
    )


async def test_a_change_costs_one_read_per_window_however_many_subscribe(
    own_stack: OwnStack, tenant: str
) -> None:
    """Twelve subscribers on two windows of one resource: a hold is read
    once per window by this gateway, not once per subscriber."""
    api = own_stack.api
    auth = await key_for(own_stack.keys, tenant)
    resource, slot = await resource_with_slot(api, auth)
    await settled(own_stack.availability, own_stack.db, tenant)
    windows = [WINDOW, {**WINDOW, "end": "2031-06-02T00:00:00Z"}]
    path = f"/v1/resources/{resource}/availability/stream"

    async with contextlib.AsyncExitStack() as stack:
        streams: list[tuple[int, EventStream]] = []
        for n in range(12):
            window = n % 2
            response = await stack.enter_async_context(
                api.stream("GET", path, params=windows[window], headers=auth)
            )
            assert response.status_code == 200, await response.aread()
            streams.append((window, EventStream(response)))
        for _, stream in streams:
            assert held(await stream.next_event()) == 0
        before = availability_reads(own_stack.availability)

        await hold(api, auth, resource, slot)
        seen: dict[int, set[str]] = {0: set(), 1: set()}
        for window, stream in streams:
            event = await stream.next_event(within=10)
            while held(event) == 0:
                seen[window].add(event.id or "")
                event = await stream.next_event(within=10)
            seen[window].add(event.id or "")
        reads = availability_reads(own_stack.availability) - before

    # One read per change and window: as many as the distinct events sent.
    assert reads == len(seen[0]) + len(seen[1]), (reads, seen)
    assert len(seen[0]) <= 2
    assert len(seen[1]) <= 2
