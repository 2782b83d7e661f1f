"""Page tokens are the services' own: a token that was tampered with, made by
hand, issued for other filters, another list or another tenant, or that is
plain garbage, is INVALID_ARGUMENT on `page_token` (gRPC) and a 400 on
`query.cursor` (HTTP); never INTERNAL / 500, and never a page.

Each list is asked with tokens forged from a genuine one of its own: the
forger reads the token's JSON, changes it and writes it back with whatever
followed the JSON (a MAC, today) untouched, as someone guessing the format
would."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

import grpc
import httpx
import pytest

from devtools.fakestripe.objects import new_id
from holdfast.contracts.booking.v1 import booking_pb2, inventory_pb2
from holdfast.contracts.webhooks.v1 import webhook_admin_pb2 as pb
from holdfast.contracts.webhooks.v1 import webhook_admin_pb2_grpc
from holdfast.platform.proto_time import time_range
from holdfast.tenancy.keys import KeyRepository
from services.webhooks.server import WebhooksApp
from tests.support.booking import BASE_TIME, BookingClient, error_of
from tests.support.gateway import key_for, problem_of
from tests.support.stripe_events import event, signed


def _unpack(token: str) -> tuple[dict[str, Any], bytes]:
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    text = raw.decode("latin-1")  # the JSON is ASCII; what follows may be any bytes
    payload, end = json.JSONDecoder().raw_decode(text)
    return payload, raw[end:]


def _pack(payload: dict[str, Any], rest: bytes = b"") -> str:
    raw = json.dumps(payload).encode() + rest
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _with(token: str, **changes: object) -> str:
    payload, rest = _unpack(token)
    return _pack({**payload, **changes}, rest)


def _flipped(token: str) -> str:
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[len(raw) // 2] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")


def forgeries(genuine: str, huge: int = 100_000) -> dict[str, str]:
    """Tokens nobody was issued, made from a genuine one (`huge`: the length
    of the longest; an HTTP request line has a limit of its own)."""
    payload, _ = _unpack(genuine)
    time_key, id_key = "k", "i"
    assert {time_key, id_key} <= payload.keys(), payload
    return {
        "a byte flipped": _flipped(genuine),
        "another time": _with(genuine, **{time_key: "2001-01-01T00:00:00+00:00"}),
        "another id": _with(genuine, **{id_key: str(uuid.uuid4())}),
        "a time that is not one": _with(genuine, **{time_key: "yesterday"}),
        "a time without a zone": _with(genuine, **{time_key: "2031-06-01T09:00:00"}),
        "an id that is not one": _with(genuine, **{id_key: "not-an-id"}),
        "fields of the wrong type": _with(genuine, **{time_key: 7, id_key: None}),
        "no MAC": _pack(payload),
        "empty JSON": _pack({}),
        "JSON that is not an object": base64.urlsafe_b64encode(b"[1, 2]").decode(),
        "garbage": "garbage!!",
        "not base64 at all": "€uro",
        "huge": "A" * huge,
    }


async def invalid_page_token(call: Awaitable[object]) -> str:
    """The call must be refused as INVALID_ARGUMENT on page_token alone."""
    details = await error_of(call)
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT, details
    assert [field for field, _ in details.field_violations] == ["page_token"], details
    return details.field_violations[0][1]


@dataclass
class Listing:
    """One List RPC: how to ask for a page, and a genuine next-page token."""

    name: str
    ask: Callable[[str], Awaitable[object]]
    genuine: str


async def _booking_listings(client: BookingClient) -> list[Listing]:
    md = client.md
    resource, slots = await client.resource_with_slots(count=2)
    await client.resource()
    for slot in slots:
        await client.hold(resource.resource_id, [slot.slot_id])

    def resources(token: str, size: int = 1) -> Any:
        request = inventory_pb2.ListResourcesRequest(page_size=size, page_token=token)
        return client.inventory.ListResources(request, metadata=md)

    def slot_page(token: str, size: int = 1) -> Any:
        request = inventory_pb2.ListSlotsRequest(
            resource_id=resource.resource_id, page_size=size, page_token=token
        )
        return client.inventory.ListSlots(request, metadata=md)

    def bookings(token: str, size: int = 1) -> Any:
        request = booking_pb2.ListBookingsRequest(page_size=size, page_token=token)
        return client.booking.ListBookings(request, metadata=md)

    return [
        Listing("ListResources", resources, (await resources("")).next_page_token),
        Listing("ListSlots", slot_page, (await slot_page("")).next_page_token),
        Listing("ListBookings", bookings, (await bookings("")).next_page_token),
    ]


async def test_every_booking_list_refuses_forged_tokens(client: BookingClient) -> None:
    listings = await _booking_listings(client)

    refused: dict[tuple[str, str], str] = {}
    for listing in listings:
        assert listing.genuine, listing.name
        await listing.ask(listing.genuine)  # the genuine token is taken
        for how, forged in forgeries(listing.genuine).items():
            refused[(listing.name, how)] = await invalid_page_token(listing.ask(forged))

    assert len(refused) == 3 * len(forgeries(listings[0].genuine))
    assert set(refused.values()) <= {"is not a token this service issued"}, refused


async def test_a_token_is_good_only_for_its_own_list_filters_and_tenant(
    client: BookingClient, channel: grpc.aio.Channel
) -> None:
    other_tenant = BookingClient.on(channel, f"t-{uuid.uuid4().hex[:12]}")
    resource, slots = await client.resource_with_slots(count=2)
    for slot in slots:
        await client.hold(resource.resource_id, [slot.slot_id])
    await client.resource()
    md = client.md

    def bookings(token: str, who: BookingClient = client, **filters: Any) -> Any:
        request = booking_pb2.ListBookingsRequest(page_size=1, page_token=token, **filters)
        return who.booking.ListBookings(request, metadata=who.md)

    def slot_page(token: str, **filters: Any) -> Any:
        request = inventory_pb2.ListSlotsRequest(
            resource_id=resource.resource_id, page_size=1, page_token=token, **filters
        )
        return client.inventory.ListSlots(request, metadata=md)

    held = await bookings("", statuses=[booking_pb2.HOLD_STATUS_HELD])
    of_resources = await client.inventory.ListResources(
        inventory_pb2.ListResourcesRequest(page_size=1), metadata=md
    )
    slots_page = await slot_page("")
    window = time_range(BASE_TIME, BASE_TIME.replace(year=2032))

    refusals = [
        await invalid_page_token(bookings(held.next_page_token)),  # other statuses
        await invalid_page_token(
            bookings(held.next_page_token, statuses=[booking_pb2.HOLD_STATUS_CONFIRMED])
        ),
        await invalid_page_token(bookings(of_resources.next_page_token)),  # another list
        await invalid_page_token(slot_page(slots_page.next_page_token, time_range=window)),
        await invalid_page_token(  # another tenant
            bookings(held.next_page_token, other_tenant, statuses=[booking_pb2.HOLD_STATUS_HELD])
        ),
    ]
    # The same request again takes it.
    again = await bookings(held.next_page_token, statuses=[booking_pb2.HOLD_STATUS_HELD])

    assert set(refusals) == {"belongs to another list, tenant or other filters"}, refusals
    assert len(again.bookings) == 1
    assert again.bookings[0].hold_id != held.bookings[0].hold_id


async def test_the_webhook_event_list_refuses_forged_tokens(
    webhooks_app: WebhooksApp, stripe_http: httpx.AsyncClient
) -> None:
    kind = f"test.kind_{new_id('x', 8)}"
    for _ in range(2):
        body, headers = signed(event(kind, {"id": new_id("obj"), "object": "thing"}))
        assert (await stripe_http.post("/stripe/webhook", content=body, headers=headers)).is_success
    async with grpc.aio.insecure_channel(f"127.0.0.1:{webhooks_app.port}") as channel:
        admin = cast(
            "webhook_admin_pb2_grpc.WebhookAdminServiceAsyncStub",
            webhook_admin_pb2_grpc.WebhookAdminServiceStub(channel),
        )

        def events(token: str, of_type: str = kind) -> Any:
            return admin.ListEvents(
                pb.ListEventsRequest(type=of_type, page_size=1, page_token=token)
            )

        genuine = (await events("")).next_page_token
        taken = await events(genuine)
        refused = {
            how: await invalid_page_token(events(forged))
            for how, forged in forgeries(genuine).items()
        }
        other_type = await invalid_page_token(events(genuine, "test.other"))

    assert len(taken.events) == 1
    assert set(refused.values()) == {"is not a token this service issued"}, refused
    assert other_type == "belongs to another list, tenant or other filters"


@pytest.mark.parametrize("path", ["/v1/resources", "/v1/bookings"])
async def test_every_http_list_answers_a_forged_cursor_with_a_400(
    api: httpx.AsyncClient,
    keys: KeyRepository,
    client: BookingClient,
    tenant: str,
    path: str,
) -> None:
    auth = await key_for(keys, tenant)
    resource, slots = await client.resource_with_slots(count=2)
    await client.resource()
    for slot in slots:
        await client.hold(resource.resource_id, [slot.slot_id])
    first = await api.get(path, params={"page_size": 1}, headers=auth)
    genuine = first.json()["next_cursor"]
    taken = await api.get(path, params={"page_size": 1, "cursor": genuine}, headers=auth)
    other = "/v1/bookings" if path == "/v1/resources" else "/v1/resources"
    of_another_list = (await api.get(other, params={"page_size": 1}, headers=auth)).json()

    answers = {
        how: await api.get(path, params={"cursor": forged}, headers=auth)
        for how, forged in {
            **forgeries(genuine, huge=8000),
            "of another list": of_another_list["next_cursor"],
        }.items()
    }

    assert taken.status_code == 200, taken.text
    assert len(taken.json()["items"]) == 1
    for how, response in answers.items():
        body = problem_of(response, 400, "INVALID_ARGUMENT")
        assert [e["field"] for e in body["errors"]] == ["query.cursor"], (how, body)
