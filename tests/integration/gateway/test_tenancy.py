"""Tenant isolation over HTTP: a key of tenant A can neither read, change nor
learn of tenant B's data. Every id of B answers 404, as an unknown id would,
and lists show A's rows only.

The module's gateway fronts a booking service that takes payments (through
the fake Stripe), so checkout is checked too: with payments off every
checkout answers PAYMENTS_DISABLED before any hold is looked at.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import grpc
import httpx
import pytest

from devtools.fakestripe import FakeStripe, FakeStripeConfig
from holdfast.tenancy.keys import KeyRepository
from services.availability.server import AvailabilityApp
from services.booking.server import BookingApp
from tests.support.booking import BookingClient
from tests.support.gateway import Call, key_for, problem_of
from tests.support.services import running_booking, running_gateway

WINDOW = {"start": "2031-05-31T00:00:00Z", "end": "2031-06-30T00:00:00Z"}


@dataclass
class Estate:
    """A tenant's resource, its slot, an open hold and a confirmed booking."""

    resource: str
    slot: str
    hold: str
    booking: str


async def estate_of(client: BookingClient) -> Estate:
    resource, [slot] = await client.resource_with_slots(capacity=5)
    rid, sid = resource.resource_id, slot.slot_id
    hold = await client.hold(rid, [sid], customer_ref="b-hold")
    booking = await client.confirm((await client.hold(rid, [sid], customer_ref="b-book")).hold_id)
    return Estate(rid, sid, hold.hold_id, booking.hold_id)


@pytest.fixture(scope="module")
async def paying_booking(migrated_database: str) -> AsyncIterator[BookingApp]:
    """A booking service that takes payments through a fake Stripe."""
    fake = FakeStripe(FakeStripeConfig())
    await fake.start()
    try:
        async with running_booking(
            migrated_database, stripe_api_key=fake.api_key, stripe_api_base=fake.base_url
        ) as booking:
            yield booking
    finally:
        await fake.stop()


@pytest.fixture(scope="module")
async def paying_channel(paying_booking: BookingApp) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{paying_booking.port}") as channel:
        yield channel


@pytest.fixture(scope="module")
async def api(
    migrated_database: str, paying_booking: BookingApp, availability_app: AvailabilityApp
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of a gateway in front of the paying booking service."""
    async with (
        running_gateway(
            migrated_database,
            f"127.0.0.1:{paying_booking.port}",
            f"127.0.0.1:{availability_app.port}",
        ) as gateway,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}", timeout=10) as client,
    ):
        yield client


@pytest.fixture
def client(paying_channel: grpc.aio.Channel, tenant: str) -> BookingClient:
    """Tenant A's client."""
    return BookingClient.on(paying_channel, tenant)


@pytest.fixture
async def other(paying_channel: grpc.aio.Channel) -> Estate:
    """Tenant B's estate, made through gRPC."""
    return await estate_of(BookingClient.on(paying_channel, f"t-{uuid.uuid4().hex[:12]}"))


def calls_with_ids_of(b: Estate, a: Estate) -> list[Call]:
    """Every route that takes an id, called with one of B's ids (where a body
    names more ids, A's own for the rest)."""
    one_hour = {"slots": [{"start": "2031-07-01T09:00:00Z", "end": "2031-07-01T10:00:00Z"}]}
    return [
        Call("GET", f"/v1/resources/{b.resource}"),
        Call("GET", f"/v1/resources/{b.resource}/availability", WINDOW),
        Call("GET", f"/v1/resources/{b.resource}/availability/stream", WINDOW),
        Call("POST", f"/v1/resources/{b.resource}/slots", body=one_hour),
        Call(
            "POST",
            "/v1/holds",
            body={"resource_id": b.resource, "slot_ids": [b.slot], "quantity": 1},
            headers=(("Idempotency-Key", f"iso-{uuid.uuid4()}"),),
        ),
        Call(
            "POST",
            "/v1/holds",
            body={"resource_id": a.resource, "slot_ids": [b.slot], "quantity": 1},
            headers=(("Idempotency-Key", f"iso-{uuid.uuid4()}"),),
        ),
        Call("GET", f"/v1/holds/{b.hold}"),
        Call("DELETE", f"/v1/holds/{b.hold}"),
        Call("POST", f"/v1/holds/{b.hold}/checkout"),
        Call("GET", f"/v1/bookings/{b.booking}"),
        Call("POST", f"/v1/bookings/{b.booking}/cancel"),
        Call("PATCH", f"/v1/slots/{b.slot}", body={"capacity": 1}),
        Call("POST", f"/v1/slots/{b.slot}/close"),
        Call("POST", f"/v1/slots/{b.slot}/reopen"),
    ]


async def test_every_route_answers_404_for_another_tenants_id(
    api: httpx.AsyncClient,
    keys: KeyRepository,
    client: BookingClient,
    tenant: str,
    other: Estate,
    db: asyncpg.Pool,
) -> None:
    auth = await key_for(keys, tenant)
    mine = await estate_of(client)
    before = await db.fetchrow(
        "SELECT capacity, held, booked, closed FROM slots WHERE id = $1::uuid", other.slot
    )

    answers = [(call, await call.send(api, auth)) for call in calls_with_ids_of(other, mine)]
    # The same routes with A's own ids work: the 404s are about whose ids they are.
    own_hold = await api.get(f"/v1/holds/{mine.hold}", headers=auth)
    own_checkout = await api.post(f"/v1/holds/{mine.hold}/checkout", headers=auth)
    own_booking = await api.get(f"/v1/bookings/{mine.booking}", headers=auth)
    own_slot = await api.post(f"/v1/slots/{mine.slot}/close", headers=auth)

    wrong = [(c.method, c.path, r.status_code, r.text) for c, r in answers if r.status_code != 404]
    assert not wrong, wrong
    for _, response in answers:
        problem_of(response, 404)
    assert own_hold.status_code == 200, own_hold.text
    assert own_checkout.status_code == 200, own_checkout.text
    assert own_booking.status_code == 200, own_booking.text
    assert (own_slot.status_code, own_slot.json()["closed"]) == (200, True)
    # Nothing of B's moved.
    after = await db.fetchrow(
        "SELECT capacity, held, booked, closed FROM slots WHERE id = $1::uuid", other.slot
    )
    assert after == before
    statuses = await db.fetch(
        "SELECT status FROM holds WHERE id = ANY($1::uuid[]) ORDER BY customer_ref",
        [other.booking, other.hold],
    )
    assert [s["status"] for s in statuses] == ["CONFIRMED", "HELD"]
    slots_of_b = await db.fetchval(
        "SELECT count(*) FROM slots WHERE resource_id = $1::uuid", other.resource
    )
    assert slots_of_b == 1


async def test_an_unknown_id_and_another_tenants_id_answer_alike(
    api: httpx.AsyncClient, keys: KeyRepository, tenant: str, other: Estate
) -> None:
    """The 404 tells nothing: B's hold looks exactly like no hold at all."""
    auth = await key_for(keys, tenant)

    theirs = await api.get(f"/v1/holds/{other.hold}", headers=auth)
    nobodys = await api.get(f"/v1/holds/{uuid.uuid4()}", headers=auth)

    a, b = problem_of(theirs, 404), problem_of(nobodys, 404)
    same = ("type", "title", "reason")
    assert [a[name] for name in same] == [b[name] for name in same]
    # The detail may name the id that was asked for, and nothing more.
    unknown = str(nobodys.request.url).rsplit("/", 1)[-1]
    assert a["detail"].replace(other.hold, "ID") == b["detail"].replace(unknown, "ID")


async def test_lists_show_only_the_keys_tenant(
    api: httpx.AsyncClient,
    keys: KeyRepository,
    client: BookingClient,
    tenant: str,
    other: Estate,
) -> None:
    auth = await key_for(keys, tenant)
    mine = await estate_of(client)

    resources = await api.get("/v1/resources", headers=auth)
    bookings = await api.get("/v1/bookings", headers=auth)
    of_their_resource = await api.get(
        "/v1/bookings", params={"resource_id": other.resource}, headers=auth
    )

    assert resources.status_code == 200, resources.text
    assert [r["id"] for r in resources.json()["items"]] == [mine.resource]
    assert bookings.status_code == 200, bookings.text
    assert {b["id"] for b in bookings.json()["items"]} == {mine.hold, mine.booking}
    assert {b["resource_id"] for b in bookings.json()["items"]} == {mine.resource}
    # Filtering by B's resource finds nothing rather than B's bookings.
    assert (of_their_resource.status_code, of_their_resource.json()["items"]) == (200, [])
