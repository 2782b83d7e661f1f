"""Live availability over Server-Sent Events: the current numbers first, a
change pushed within seconds, heartbeats while nothing changes, and
`Last-Event-ID` resumption (the missed change at once, or nothing).

The test gateway sends a heartbeat every half second; reading "until the
next heartbeat" is how a test says "at once" without a clock."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from holdfast.platform.streams import AVAILABILITY_TOPIC, stream_key, stream_position
from holdfast.tenancy.keys import KeyRepository
from services.availability.server import AvailabilityApp
from services.booking.server import BookingApp
from tests.support.availability import eventually, settled
from tests.support.booking import BookingClient
from tests.support.gateway import Event, EventStream, key_for, problem_of
from tests.support.postgres_server import PostgresServer
from tests.support.redis_server import RedisServer
from tests.support.services import running_availability, running_booking, running_gateway
from tests.support.tcp_proxy import TcpProxy

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


@dataclass
class OwnStack:
    """Booking, availability and a gateway on a database and Redis of their own."""

    api: httpx.AsyncClient
    keys: KeyRepository
    redis: Redis
    stream: str
    availability: AvailabilityApp
    db: asyncpg.Pool


@pytest.fixture
async def own_stack(own_database: str, redis_server: RedisServer) -> AsyncIterator[OwnStack]:
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


async def test_a_stream_resumed_after_its_change_was_trimmed_gets_the_current_numbers(
    own_stack: OwnStack, tenant: str
) -> None:
    """The stream keeps a bounded number of entries: a client away for long
    cannot be told what it missed, so it gets the current numbers."""
    api, redis = own_stack.api, own_stack.redis
    auth = await key_for(own_stack.keys, tenant)
    resource, slot = await resource_with_slot(api, auth)
    _, elsewhere = await resource_with_slot(api, auth)
    await settled(own_stack.availability, own_stack.db, tenant)
    async with subscribed(api, resource, auth) as stream:
        last = await stream.next_event()

    await hold(api, auth, resource, slot)
    await settled(own_stack.availability, own_stack.db, tenant)
    # The hold's entry is trimmed away (as MAXLEN does to old entries), and
    # later the stream goes on with a change elsewhere.
    newest: list[tuple[bytes, object]] = await redis.xrevrange(own_stack.stream, count=1)  # type: ignore[assignment]
    await redis.xtrim(own_stack.stream, minid=f"{stream_position(newest[0][0])[0] + 1}-0")
    closed = await api.post(f"/v1/slots/{elsewhere}/close", headers=auth)
    assert closed.status_code == 200, closed.text
    await settled(own_stack.availability, own_stack.db, tenant)
    async with subscribed(api, resource, auth, last.id) as resumed:
        before_heartbeat = await resumed.until(comments=1)

    assert held(last) == 0
    assert [held(e) for e in before_heartbeat] == [1]


async def test_a_stream_asked_for_while_redis_is_down_is_a_503(
    migrated_database: str,
    booking_app: BookingApp,
    availability_app: AvailabilityApp,
    redis_server: RedisServer,
    keys: KeyRepository,
    client: BookingClient,
    tenant: str,
) -> None:
    """Without the stream there are no changes to push: the client is told to
    come back, as for any service that is down."""
    auth = await key_for(keys, tenant)
    resource, _ = await client.resource_with_slots()
    async with (
        running_gateway(
            migrated_database,
            f"127.0.0.1:{booking_app.port}",
            f"127.0.0.1:{availability_app.port}",
            redis_url=redis_server.url,
        ) as gateway,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}", timeout=10) as api,
    ):
        redis_server.kill()
        response = await api.get(
            f"/v1/resources/{resource.resource_id}/availability/stream",
            params=WINDOW,
            headers=auth,
        )

    problem_of(response, 503)


def availability_answers(app: AvailabilityApp, code: str) -> float:
    """GetAvailability calls the availability service answered with `code`."""
    return sum(
        s.value
        for family in app.metrics.registry.collect()
        for s in family.samples
        if s.name == "holdfast_grpc_requests_total"
        and "GetAvailability" in s.labels["method"]
        and s.labels["code"] == code
    )


async def test_a_stream_carries_on_while_a_change_cannot_be_read(
    postgres_server: PostgresServer, redis_server: RedisServer, tenant: str
) -> None:
    """The availability service's database goes away just as a change comes:
    its numbers cannot be read (the service answers UNAVAILABLE), so the
    stream sends heartbeats meanwhile, and the numbers once they can be read,
    over the same connection."""
    database = await postgres_server.create_database("holdfast", migrated=True)
    proxy = TcpProxy("127.0.0.1", postgres_server.port)
    own = {"redis_url": redis_server.url}
    async with (
        proxy,
        running_booking(database, **own) as booking,
        running_availability(
            database.replace(f":{postgres_server.port}/", f":{proxy.port}/"), **own
        ) as availability,
        running_gateway(
            database, f"127.0.0.1:{booking.port}", f"127.0.0.1:{availability.port}", **own
        ) as gateway,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}", timeout=10) as api,
        asyncpg.create_pool(database, min_size=1, max_size=2) as db,
    ):
        auth = await key_for(KeyRepository(db), tenant)
        resource, slot = await resource_with_slot(api, auth)
        await settled(availability, db, tenant)
        async with subscribed(api, resource, auth) as stream:
            first = await stream.next_event()
            await proxy.cut()
            refused_before = availability_answers(availability, "UNAVAILABLE")
            await hold(api, auth, resource, slot)
            # The gateway reads the change, fails, and reads it again a second
            # later, failing again; the stream sends heartbeats all along.
            while_away: list[Event] = []
            heartbeats = len(stream.comments)
            async with asyncio.timeout(30):
                while availability_answers(availability, "UNAVAILABLE") < refused_before + 2:
                    while_away += await stream.until(comments=1)
            heartbeats = len(stream.comments) - heartbeats
            await proxy.start()
            after = await stream.next_event(within=15)

    assert held(first) == 0
    assert heartbeats >= 2  # a second of failed reads: two heartbeats at least
    assert while_away == []
    assert held(after) == 1
    assert stream_position(after.id or "") > stream_position(first.id or "")


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
