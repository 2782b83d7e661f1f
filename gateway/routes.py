"""The `/v1` routes: authenticate, limit, translate, call, translate back.

No booking logic lives here: every decision is the gRPC services'. Each route
names the scope it needs; the tenant comes from the API key only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Annotated, Any

import grpc
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from google.protobuf.duration_pb2 import Duration
from pydantic import AfterValidator
from starlette.types import Receive, Scope, Send

from gateway import convert, models
from gateway.auth import Principal
from gateway.context import Gateway, gateway_of, requires
from gateway.problems import ProblemError
from gateway.stream import TooManyStreams
from holdfast.contracts.availability.v1 import availability_pb2
from holdfast.contracts.booking.v1 import booking_pb2, inventory_pb2
from holdfast.contracts.common.v1 import money_pb2
from holdfast.platform.proto_time import time_range

# Operation ids are the functions' names: stable, and what links name.
router = APIRouter(prefix="/v1", generate_unique_id_function=lambda route: route.name)

PageSize = Annotated[int, Query(ge=1, le=500)]
Cursor = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=1024,
        pattern=r"^[A-Za-z0-9_-]+$",
        description=(
            "Opaque: the `next_cursor` of the previous page, passed back unchanged with the"
            " same filters. Anything else (changed, made up, from another list or filters)"
            " is a 400."
        ),
    ),
]
WindowStart = Annotated[
    models.Instant,
    Query(description=f"Slots starting at or after this. {models.INSTANT}"),
]
WindowEnd = Annotated[
    models.Instant,
    Query(
        description="Slots starting before this: after `start`, and at most 62 days after it"
        f" (422 otherwise). {models.INSTANT}"
    ),
]
ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": models.Problem, "description": description}
    for status, description in {
        400: "Malformed request",
        401: "Missing, malformed, unknown, expired or revoked API key",
        403: "The key lacks the route's scope",
        404: "No such thing for this tenant",
        409: "Conflicts with the current state (sold out, wrong state, reused key...)",
        413: "Body too large",
        422: "Invalid request; `errors` names each field",
        429: "Rate limited; see Retry-After",
        503: "A service is unavailable; retry",
        504: "A service did not answer in time; retry",
    }.items()
}


def _linked(status: int, description: str, **links: dict[str, Any]) -> dict[int | str, Any]:
    """ERRORS, and the success answer's OpenAPI links: which operations take
    what it returns (a client, or a stateful fuzzer, follows them)."""
    return {**ERRORS, status: {"description": description, "links": links}}


def _link(operation: str, **values: object) -> dict[str, Any]:
    """A link to `operation`: path and query parameters by name, `body` the
    request body, each a runtime expression or a constant."""
    body = values.pop("body", None)
    link: dict[str, Any] = {"operationId": operation, "parameters": values}
    if body is not None:
        link["requestBody"] = body
    return link


_RESOURCE_ID = "$response.body#/id"
_HOLD_ID = "$response.body#/id"


def _deadline(gw: Gateway) -> float:
    return gw.settings.request_timeout_seconds


# --- resources and availability ---------------------------------------------


@router.get("/resources", response_model=models.ResourceList, responses=ERRORS)
async def list_resources(
    gw: Annotated[Gateway, Depends(gateway_of)],
    who: Annotated[Principal, Depends(requires("availability:read"))],
    page_size: PageSize = 50,
    cursor: Cursor = None,
) -> models.ResourceList:
    answer = await gw.downstream.inventory.ListResources(
        inventory_pb2.ListResourcesRequest(page_size=page_size, page_token=cursor or ""),
        metadata=gw.metadata(who),
        timeout=_deadline(gw),
    )
    return models.ResourceList(
        items=[convert.resource(r) for r in answer.resources],
        next_cursor=answer.next_page_token or None,
    )


@router.get(
    "/resources/{resource_id}",
    response_model=models.Resource,
    responses=_linked(
        200,
        "The resource",
        create_slots=_link("create_slots", resource_id=_RESOURCE_ID),
        get_availability=_link("get_availability", resource_id=_RESOURCE_ID),
    ),
)
async def get_resource(
    resource_id: uuid.UUID,
    gw: Annotated[Gateway, Depends(gateway_of)],
    who: Annotated[Principal, Depends(requires("availability:read"))],
) -> models.Resource:
    answer = await gw.downstream.inventory.GetResource(
        inventory_pb2.GetResourceRequest(resource_id=str(resource_id)),
        metadata=gw.metadata(who),
        timeout=_deadline(gw),
    )
    return convert.resource(answer.resource)


async def _availability(
    gw: Gateway,
    who: Principal,
    resource_id: uuid.UUID,
    start: datetime,
    end: datetime,
    including: str = "",
) -> models.Availability:
    """`including`: a change message the answer must reflect (see the stream)."""
    answer = await gw.downstream.availability.GetAvailability(
        availability_pb2.GetAvailabilityRequest(
            resource_id=str(resource_id),
            time_range=time_range(start, end),
            min_change_id=including,
        ),
        metadata=gw.metadata(who),
        timeout=_deadline(gw),
    )
    return convert.availability(answer.availability)


@router.get(
    "/resources/{resource_id}/availability",
    response_model=models.Availability,
    responses=ERRORS,
)
async def get_availability(
    resource_id: uuid.UUID,
    start: WindowStart,
    end: WindowEnd,
    gw: Annotated[Gateway, Depends(gateway_of)],
    who: Annotated[Principal, Depends(requires("availability:read"))],
) -> models.Availability:
    """Every slot starting in [start, end) with what is free; at most 62 days."""
    return await _availability(gw, who, resource_id, start, end)


_UINT64_MAX = 2**64 - 1
# A stream that ends for good (its key stopped being valid) waits this long
# before a retrying client (EventSource) comes back, to be refused.
_RETRY_MS = 10_000
# When a stream's place is refused, when to ask again.
_STREAM_RETRY_AFTER_SECONDS = 5
# A change's numbers that could not be read for one of these reasons (the
# availability service or its database away, or too slow) are read again
# this much later; the stream carries on meanwhile.
_READ_AGAIN = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
_READ_AGAIN_SECONDS = 1.0


def _stream_id(value: str | None) -> str | None:
    """A Redis stream id: two numbers of at most 64 bits each."""
    if value is not None and any(int(part) > _UINT64_MAX for part in value.split("-")):
        raise ValueError("not a stream position: each part is at most 2^64 - 1")
    return value


LastEventId = Annotated[
    str | None,
    Header(
        pattern=r"^[0-9]{1,20}-[0-9]{1,20}$",
        description=(
            "The `id` of the last event received, passed back unchanged: two decimal numbers"
            " of at most 2^64 - 1 joined by `-`. Anything else is a 400."
        ),
    ),
    AfterValidator(_stream_id),
]


def _json_data(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "string", "contentMediaType": "application/json", "contentSchema": schema}


# One event of the stream, as Open API 3.1 describes a text/event-stream
# (each event an object of its fields; heartbeat comments are no events).
_EVENT_SCHEMA = {
    "oneOf": [
        {
            "type": "object",
            "required": ["event", "data", "id"],
            "properties": {
                "event": {"const": "availability"},
                "data": _json_data({"$ref": "#/components/schemas/Availability"}),
                "id": {"type": "string", "pattern": r"^[0-9]{1,20}-[0-9]{1,20}$"},
            },
        },
        {
            "type": "object",
            "required": ["event", "data"],
            "properties": {
                "event": {"const": "closed"},
                "data": _json_data(
                    {
                        "type": "object",
                        "required": ["reason", "detail"],
                        "properties": {"reason": {"type": "string"}, "detail": {"type": "string"}},
                    }
                ),
                "retry": {"type": "integer"},
            },
        },
    ]
}


class _StreamResponse(StreamingResponse):
    """Gives the stream's place back when the response is over, however it
    ends: finished, the client gone, or never started."""

    def __init__(self, content: AsyncIterator[str], place: contextlib.ExitStack) -> None:
        super().__init__(
            content,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self._place = place

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with self._place:
            await super().__call__(scope, receive, send)


def _sse(event: str, data: str, event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {data}\n\n"


@router.get(
    "/resources/{resource_id}/availability/stream",
    responses={
        **ERRORS,
        200: {
            "content": {"text/event-stream": {"schema": _EVENT_SCHEMA}},
            "description": (
                "`availability` events (data: the Availability document, id: the position"
                " to resume from), `: heartbeat` comments while nothing changes, and a last"
                " `closed` event (data: `reason`, `detail`) when the API key stops being"
                " valid."
            ),
        },
        429: {
            "model": models.Problem,
            "description": "Rate limited, or the API key holds all the streams it may; see"
            " Retry-After",
        },
    },
    response_class=StreamingResponse,
)
async def stream_availability(
    resource_id: uuid.UUID,
    start: WindowStart,
    end: WindowEnd,
    request: Request,
    gw: Annotated[Gateway, Depends(gateway_of)],
    who: Annotated[Principal, Depends(requires("availability:read"))],
    last_event_id: LastEventId = None,
) -> StreamingResponse:
    """Server-Sent Events: `availability` events with the resource's numbers
    whenever they change, heartbeat comments while they do not. Reconnect
    with `Last-Event-ID` to get what changed meanwhile. The stream ends when
    its API key is revoked or expires. An API key holds a limited number of
    streams at once (429 beyond)."""
    place = contextlib.ExitStack()
    try:
        place.enter_context(gw.streams.place(who.key_prefix))
    except TooManyStreams as full:
        raise ProblemError(
            429,
            "TOO_MANY_STREAMS",
            f"this API key holds {full.limit} streams already; close one",
            headers={"Retry-After": str(_STREAM_RETRY_AFTER_SECONDS)},
        ) from None
    with place:
        # The stream position first: the numbers read next are at least as new.
        since = last_event_id or await gw.hub.newest_id()
        first = await _availability(gw, who, resource_id, start, end)  # 404 before streaming
        events = _availability_events(
            gw, who, request, resource_id, (start, end), first, since, last_event_id is not None
        )
        response = _StreamResponse(events, place.pop_all())
    gw.metrics.sse_subscribers.inc()
    return response


async def _availability_events(
    gw: Gateway,
    who: Principal,
    request: Request,
    resource_id: uuid.UUID,
    window: tuple[datetime, datetime],
    first: models.Availability,
    since: str,
    resuming: bool,
) -> AsyncIterator[str]:
    """The stream's events: `first` unless resuming from `since`, then one
    per change (read once per change for every subscriber of the window),
    heartbeats between, and a last one when the key stops being valid."""
    start, end = window
    resource = (who.tenant, str(resource_id))
    window_key = (*resource, start.isoformat(), end.isoformat())
    settings = gw.settings
    authorization = request.headers.get("authorization")
    # The key is judged again this often, through the same cache as requests:
    # a revocation or expiry ends the stream within the cache time and this.
    key_check_seconds = min(settings.sse_heartbeat_seconds, max(settings.key_cache_seconds, 0.5))

    async def read(change_id: str) -> models.Availability:
        # The availability service may not have applied this change yet;
        # naming it makes the answer include it.
        return await _availability(gw, who, resource_id, start, end, including=change_id)

    async def key_trouble() -> ProblemError | None:
        try:
            await gw.auth.principal(authorization)
        except ProblemError as refused:
            return refused if refused.status == 401 else None
        except Exception:  # the key store is unreachable: no verdict, keep streaming
            return None
        return None

    with gw.hub.subscribe(resource) as changes, gw.stream_reads.watching(window_key):
        # Subscribed: from here on no change is missed. What changed after
        # `since` but before that (or while a resuming client was away) is
        # sent with the numbers read again.
        pending_id: str | None = await gw.hub.changed_since(resource, since)
        if pending_id is None and not resuming:
            yield _sse("availability", first.model_dump_json(), since)
        clock = asyncio.get_running_loop()
        next_heartbeat = clock.time() + settings.sse_heartbeat_seconds
        next_key_check = clock.time() + key_check_seconds
        # When a change's numbers could not be read, when to try again (a
        # newer change is tried at once).
        read_again_at: float | None = None
        while True:
            if pending_id is not None and read_again_at is None:
                try:
                    change_id, current = await gw.stream_reads.read(window_key, pending_id, read)
                except grpc.aio.AioRpcError as error:
                    if error.code() not in _READ_AGAIN:
                        raise
                    # The availability service (or its database) is away for
                    # now: the stream stays open and the change waits.
                    read_again_at = clock.time() + _READ_AGAIN_SECONDS
                else:
                    yield _sse("availability", current.model_dump_json(), change_id)
                    pending_id = None
                    next_heartbeat = clock.time() + settings.sse_heartbeat_seconds
            wake_at = min(next_heartbeat, next_key_check, read_again_at or next_heartbeat)
            try:
                async with asyncio.timeout_at(wake_at):
                    pending_id = await changes.get()
                    read_again_at = None
            except TimeoutError:
                pass
            now = clock.time()
            if now >= next_key_check:
                next_key_check = now + key_check_seconds
                if (refused := await key_trouble()) is not None:
                    ended = json.dumps({"reason": refused.reason, "detail": refused.detail})
                    yield f"retry: {_RETRY_MS}\n" + _sse("closed", ended)
                    return
            # No heartbeat when an event is about to go instead.
            if now >= next_heartbeat and (pending_id is None or read_again_at is not None):
                yield ": heartbeat\n\n"
                next_heartbeat = now + settings.sse_heartbeat_seconds
            if read_again_at is not None and now >= read_again_at:
                read_again_at = None


# --- holds -------------------------------------------------------------------


_HOLD_LINKS = {
    "get_hold": _link("get_hold", hold_id=_HOLD_ID),
    "release_hold": _link("release_hold", hold_id=_HOLD_ID),
    "start_checkout": _link("start_checkout", hold_id=_HOLD_ID),
    "get_booking": _link("get_booking", booking_id=_HOLD_ID),
    "cancel_booking": _link("cancel_booking", booking_id=_HOLD_ID),
    "get_resource": _link("get_resource", resource_id="$response.body#/resource_id"),
}


@router.post(
    "/holds",
    status_code=201,
    response_model=models.Hold,
    responses=_linked(201, "The hold", **_HOLD_LINKS),
)
async def create_hold(
    body: models.HoldCreate,
    gw: Annotated[Gateway, Depends(gateway_of)],
    who: Annotated[Principal, Depends(requires("holds:write"))],
    idempotency_key: Annotated[
        str,
        Header(
            min_length=1,
            max_length=128,
            pattern=r"^[\x21-\x7e]+$",
            description="Required: the same key and body give the same hold again",
        ),
    ],
) -> models.Hold:
    request = booking_pb2.CreateHoldRequest(
        resource_id=str(body.resource_id),
        slot_ids=[str(s) for s in body.slot_ids],
        quantity=body.quantity,
        customer_ref=body.customer_ref,
        request_id=idempotency_key,
    )
    if body.ttl_seconds is not None:
        ttl = Duration()
        ttl.FromTimedelta(timedelta(seconds=body.ttl_seconds))
        request.ttl.CopyFrom(ttl)
    answer = await gw.downstream.booking.CreateHold(
        request, metadata=gw.metadata(who), timeout=_deadline(gw)
    )
    return convert.hold(answer.hold)


@router.get(
    "/holds/{hold_id}",
    response_model=models.Hold,
    responses=_linked(200, "The hold", **_HOLD_LINKS),
)
async def get_hold(
    hold_id: uuid.UUID,
    gw: Annotated[Gateway, Depends(gateway_of)],
    who: Annotated[Principal, Depends(requires("holds:write"))],
) -> models.Hold:
    answer = await gw.downstream.booking.GetHold(
        booking_pb2.GetHoldRequest(hold_id=str(hold_id)),
        metadata=gw.metadata(who),
        timeout=_deadline(gw),
    )
    return convert.hold(answer.hold)


@router.delete("/holds/{hold_id}", response_model=models.Hold, responses=ERRORS)
async def release_hold(
    hold_id: uuid.UUID,
    gw: Annotated[Gateway, Depends(gateway_of)],
    who: Annotated[Principal, Depends(requires("holds:write"))],
) -> models.Hold:
    """Gives the hold's places back; releasing again is harmless."""
    answer = await gw.downstream.booking.ReleaseHold(
        booking_pb2.ReleaseHoldRequest(hold_id=str(hold_id), reason="released by the customer"),
        metadata=gw.metadata(who),
        timeout=_deadline(gw),
    )
    return convert.hold(answer.hold)


@router.post("/holds/{hold_id}/checkout", response_model=models.Checkout, responses=ERRORS)
async def start_checkout(
    hold_id: uuid.UUID,
    gw: Annotated[Gateway, Depends(gateway_of)],
    who: Annotated[Principal, Depends(requires("holds:write"))],
    body: models.CheckoutCreate | None = None,
) -> models.Checkout:
    """The Stripe Checkout page to send the customer to (the same while open)."""
    answer = await gw.downstream.booking.StartCheckout(
        booking_pb2.StartCheckoutRequest(
            hold_id=str(hold_id),
            success_url=(body.success_url or "") if body else "",
            cancel_url=(body.cancel_url or "") if body else "",
        ),
        metadata=gw.metadata(who),
        timeout=_deadline(gw) + gw.settings.request_timeout_seconds,  # Stripe is called
    )
    return convert.checkout(answer.checkout)


# --- bookings ----------------------------------------------------------------


@router.get("/bookings", response_model=models.HoldList, responses=ERRORS)
async def list_bookings(
    gw: Annotated[Gateway, Depends(gateway_of)],
    who: Annotated[Principal, Depends(requires("bookings:read"))],
    status: Annotated[list[models.HoldStatus] | None, Query()] = None,
    resource_id: uuid.UUID | None = None,
    page_size: PageSize = 50,
    cursor: Cursor = None,
) -> models.HoldList:
    """Holds and bookings, newest first; `status` may repeat."""
    answer = await gw.downstream.booking.ListBookings(
        booking_pb2.ListBookingsRequest(
            page_size=page_size,
            page_token=cursor or "",
            statuses=[
                booking_pb2.HoldStatus.Value(f"HOLD_STATUS_{s.upper()}") for s in status or []
            ],
            resource_id=str(resource_id) if resource_id else "",
        ),
        metadata=gw.metadata(who),
        timeout=_deadline(gw),
    )
    return models.HoldList(
        items=[convert.hold(b) for b in answer.bookings], next_cursor=answer.next_page_token or None
    )


@router.get("/bookings/{booking_id}", response_model=models.Hold, responses=ERRORS)
async def get_booking(
    booking_id: uuid.UUID,
    gw: Annotated[Gateway, Depends(gateway_of)],
    who: Annotated[Principal, Depends(requires("bookings:read"))],
) -> models.Hold:
    answer = await gw.downstream.booking.GetBooking(
        booking_pb2.GetBookingRequest(booking_id=str(booking_id)),
        metadata=gw.metadata(who),
        timeout=_deadline(gw),
    )
    return convert.hold(answer.booking)


@router.post(
    "/bookings/{booking_id}/cancel", response_model=models.CancelledBooking, responses=ERRORS
)
async def cancel_booking(
    booking_id: uuid.UUID,
    gw: Annotated[Gateway, Depends(gateway_of)],
    who: Annotated[Principal, Depends(requires("bookings:write"))],
    body: models.Cancel | None = None,
) -> models.CancelledBooking:
    """Cancels a booking, its places come back; its payment is refunded in
    full at Stripe unless `refund` is `none`. Cancelling again is harmless."""
    keep_payment = body is not None and body.refund == "none"
    answer = await gw.downstream.booking.CancelBooking(
        booking_pb2.CancelBookingRequest(
            booking_id=str(booking_id),
            reason=body.reason if body else "",
            refund=booking_pb2.REFUND_MODE_NONE if keep_payment else booking_pb2.REFUND_MODE_FULL,
        ),
        metadata=gw.metadata(who),
        timeout=_deadline(gw) + gw.settings.request_timeout_seconds,  # Stripe is called
    )
    return convert.cancelled(answer)


# --- inventory (admin) -------------------------------------------------------


@router.post(
    "/resources",
    status_code=201,
    response_model=models.Resource,
    responses=_linked(
        201,
        "The resource made",
        get_resource=_link("get_resource", resource_id=_RESOURCE_ID),
        create_slots=_link("create_slots", resource_id=_RESOURCE_ID),
        get_availability=_link("get_availability", resource_id=_RESOURCE_ID),
        stream_availability=_link("stream_availability", resource_id=_RESOURCE_ID),
        list_bookings=_link("list_bookings", resource_id=_RESOURCE_ID),
    ),
)
async def create_resource(
    body: models.ResourceCreate,
    gw: Annotated[Gateway, Depends(gateway_of)],
    who: Annotated[Principal, Depends(requires("inventory:admin"))],
) -> models.Resource:
    answer = await gw.downstream.inventory.CreateResource(
        inventory_pb2.CreateResourceRequest(
            name=body.name,
            time_zone=body.time_zone,
            price=money_pb2.Money(
                currency_code=body.price.currency, amount_minor=body.price.amount_minor
            ),
            default_capacity=body.default_capacity,
        ),
        metadata=gw.metadata(who),
        timeout=_deadline(gw),
    )
    return convert.resource(answer.resource)


@router.post(
    "/resources/{resource_id}/slots",
    status_code=201,
    response_model=models.SlotList,
    responses=_linked(
        201,
        "The slots made, in the order asked",
        create_hold=_link(
            "create_hold",
            body={
                "resource_id": "$request.path.resource_id",
                "slot_ids": ["$response.body#/items/0/id"],
                "quantity": 1,
            },
        ),
        update_capacity=_link("update_capacity", slot_id="$response.body#/items/0/id"),
        close_slot=_link("close_slot", slot_id="$response.body#/items/0/id"),
        reopen_slot=_link("reopen_slot", slot_id="$response.body#/items/0/id"),
        get_availability=_link("get_availability", resource_id="$request.path.resource_id"),
    ),
)
async def create_slots(
    resource_id: uuid.UUID,
    body: models.SlotsCreate,
    gw: Annotated[Gateway, Depends(gateway_of)],
    who: Annotated[Principal, Depends(requires("inventory:admin"))],
) -> models.SlotList:
    answer = await gw.downstream.inventory.CreateSlots(
        inventory_pb2.CreateSlotsRequest(
            resource_id=str(resource_id),
            slots=[
                # None leaves capacity unset (the resource's default); 0 is 0.
                inventory_pb2.SlotSpec(time_range=time_range(s.start, s.end), capacity=s.capacity)
                for s in body.slots
            ],
        ),
        metadata=gw.metadata(who),
        timeout=_deadline(gw),
    )
    return models.SlotList(items=[convert.slot(s) for s in answer.slots])


@router.patch("/slots/{slot_id}", response_model=models.Slot, responses=ERRORS)
async def update_capacity(
    slot_id: uuid.UUID,
    body: models.CapacityUpdate,
    gw: Annotated[Gateway, Depends(gateway_of)],
    who: Annotated[Principal, Depends(requires("inventory:admin"))],
) -> models.Slot:
    """Never below what is held plus booked (409 otherwise)."""
    answer = await gw.downstream.inventory.UpdateSlotCapacity(
        inventory_pb2.UpdateSlotCapacityRequest(slot_id=str(slot_id), capacity=body.capacity),
        metadata=gw.metadata(who),
        timeout=_deadline(gw),
    )
    return convert.slot(answer.slot)


@router.post("/slots/{slot_id}/close", response_model=models.Slot, responses=ERRORS)
async def close_slot(
    slot_id: uuid.UUID,
    gw: Annotated[Gateway, Depends(gateway_of)],
    who: Annotated[Principal, Depends(requires("inventory:admin"))],
) -> models.Slot:
    """A closed slot takes no new holds; its holds and bookings stay."""
    closed = await gw.downstream.inventory.CloseSlot(
        inventory_pb2.CloseSlotRequest(slot_id=str(slot_id)),
        metadata=gw.metadata(who),
        timeout=_deadline(gw),
    )
    return convert.slot(closed.slot)


@router.post("/slots/{slot_id}/reopen", response_model=models.Slot, responses=ERRORS)
async def reopen_slot(
    slot_id: uuid.UUID,
    gw: Annotated[Gateway, Depends(gateway_of)],
    who: Annotated[Principal, Depends(requires("inventory:admin"))],
) -> models.Slot:
    reopened = await gw.downstream.inventory.ReopenSlot(
        inventory_pb2.ReopenSlotRequest(slot_id=str(slot_id)),
        metadata=gw.metadata(who),
        timeout=_deadline(gw),
    )
    return convert.slot(reopened.slot)
