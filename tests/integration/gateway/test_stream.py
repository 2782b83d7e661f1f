"""Live availability over Server-Sent Events: the current numbers first, a
change pushed within seconds, heartbeats while nothing changes, and
`Last-Event-ID` resumption (the missed change at once, or nothing).

The test gateway sends a heartbeat every half second; reading "until the
next heartbeat" is how a test says "at once" without a clock."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from holdfast.platform.streams import stream_position
from holdfast.tenancy.keys import KeyRepository
from services.availability.server import AvailabilityApp
from tests.support.availability import settled
from tests.support.booking import BookingClient
from tests.support.gateway import key_for, problem_of
from tests.support.sse import WINDOW, held, hold, subscribed


async def test_the_first_event_is_the_current_availability(
    api: httpx.AsyncClient, keys: KeyRepository, client: BookingClient, tenant: str
) -> None:
    auth = await key_for(keys, tenant)
    resource, [slot] = await client.resource_with_slots(capacity=4)
    await client.hold(resource.resource_id, [slot.slot_id])
    path = f"/v1/resources/{resource.resource_id}/availability"

    now = (await api.get(path, params=WINDOW, headers=auth)).json()
    async with subscribed(api, resource.resource_id, auth) as stream:
        first = await stream.next_event()

    assert first.event == "availability"
    assert first.id
    assert first.json() == now
    assert (now["slots"][0]["held"], now["slots"][0]["available"]) == (1, 3)


async def test_a_hold_shows_in_a_following_event(
    api: httpx.AsyncClient, keys: KeyRepository, client: BookingClient, tenant: str
) -> None:
    auth = await key_for(keys, tenant)
    resource, [slot] = await client.resource_with_slots(capacity=4)

    async with subscribed(api, resource.resource_id, auth) as stream:
        first = await stream.next_event()
        await hold(api, auth, resource.resource_id, slot.slot_id)
        seen = [await stream.next_event(within=10)]
        # Each event carries the numbers at the time it was sent; the hold
        # must show within a few seconds, not necessarily in the very next.
        while held(seen[-1]) == 0 and len(seen) < 5:
            seen.append(await stream.next_event(within=10))

    assert held(first) == 0
    assert held(seen[-1]) == 1, seen
    assert seen[-1].json()["slots"][0]["available"] == 3
    assert stream_position(seen[-1].id or "") > stream_position(first.id or "")


async def test_heartbeats_keep_an_idle_stream_open(
    api: httpx.AsyncClient,
    keys: KeyRepository,
    client: BookingClient,
    tenant: str,
    availability_app: AvailabilityApp,
    db: asyncpg.Pool,
) -> None:
    auth = await key_for(keys, tenant)
    resource, _ = await client.resource_with_slots()
    await settled(availability_app, db, tenant)  # the slot's creation is no news

    async with subscribed(api, resource.resource_id, auth) as stream:
        await stream.next_event()
        events = await stream.until(comments=2)

    assert events == []
    assert stream.comments == ["heartbeat", "heartbeat"]


async def test_a_resumed_stream_gets_the_missed_change_at_once(
    api: httpx.AsyncClient,
    keys: KeyRepository,
    client: BookingClient,
    tenant: str,
    availability_app: AvailabilityApp,
    db: asyncpg.Pool,
) -> None:
    auth = await key_for(keys, tenant)
    resource, [slot] = await client.resource_with_slots(capacity=4)
    async with subscribed(api, resource.resource_id, auth) as stream:
        last = await stream.next_event()

    await hold(api, auth, resource.resource_id, slot.slot_id)
    await settled(availability_app, db, tenant)  # published and applied
    async with subscribed(api, resource.resource_id, auth, last.id) as resumed:
        before_heartbeat = await resumed.until(comments=1)

    assert held(last) == 0
    assert [held(e) for e in before_heartbeat] == [1]
    assert stream_position(before_heartbeat[0].id or "") > stream_position(last.id or "")


async def test_a_resumed_stream_without_changes_sends_no_event(
    api: httpx.AsyncClient,
    keys: KeyRepository,
    client: BookingClient,
    tenant: str,
    availability_app: AvailabilityApp,
    db: asyncpg.Pool,
) -> None:
    auth = await key_for(keys, tenant)
    resource, _ = await client.resource_with_slots()
    elsewhere, [other_slot] = await client.resource_with_slots()
    await settled(availability_app, db, tenant)
    async with subscribed(api, resource.resource_id, auth) as stream:
        last = await stream.next_event()

    # A change to another resource is not a change to this one.
    await hold(api, auth, elsewhere.resource_id, other_slot.slot_id)
    await settled(availability_app, db, tenant)
    async with subscribed(api, resource.resource_id, auth, last.id) as resumed:
        events = await resumed.until(comments=1)

    assert events == []
    assert resumed.comments == ["heartbeat"]


@pytest.mark.parametrize(
    "last_event_id",
    [
        pytest.param(b"yesterday", id="words"),
        pytest.param(b"", id="empty"),
        pytest.param(b"12", id="one-part"),
        pytest.param(b"1-2-3", id="three-parts"),
        pytest.param(b"-1-0", id="negative"),
        pytest.param(b"1 -0", id="space"),
        pytest.param(b"99999999999999999999-0", id="past-2^64"),
        pytest.param(b"0-18446744073709551616", id="just-past-2^64"),
        pytest.param("\u0661-0".encode(), id="arabic-digit-utf8"),
        pytest.param(b"\xb2-0", id="superscript-latin1"),
        pytest.param(b"1" * 21 + b"-0", id="21-digits"),
    ],
)
async def test_a_malformed_last_event_id_is_a_400_before_the_stream(
    api: httpx.AsyncClient,
    keys: KeyRepository,
    client: BookingClient,
    tenant: str,
    last_event_id: bytes,
) -> None:
    """The position is the server's own, passed back: a bad one is a
    malformed request, answered whole instead of a stream."""
    auth = await key_for(keys, tenant)
    resource, _ = await client.resource_with_slots()
    headers = {k.encode(): v.encode() for k, v in auth.items()}

    response = await api.get(
        f"/v1/resources/{resource.resource_id}/availability/stream",
        params=WINDOW,
        headers={**headers, b"Last-Event-ID": last_event_id},
    )

    body = problem_of(response, 400, "INVALID_ARGUMENT")
    assert [e["field"] for e in body["errors"]] == ["header.last-event-id"]


async def test_the_largest_last_event_id_is_taken(
    api: httpx.AsyncClient, keys: KeyRepository, client: BookingClient, tenant: str
) -> None:
    auth = await key_for(keys, tenant)
    resource, _ = await client.resource_with_slots()
    largest = f"{2**64 - 1}-{2**64 - 1}"

    async with subscribed(api, resource.resource_id, auth, largest) as stream:
        events = await stream.until(comments=1)

    assert events == []  # nothing is newer than that
