"""The live availability of a window as Server-Sent Events: a slotted
resource's slots in a time range, or a windowed resource's bookable starts
and free units on some dates."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

import grpc
from fastapi import Depends, Header, Request
from fastapi.responses import StreamingResponse
from pydantic import AfterValidator
from starlette.types import Receive, Scope, Send

from gateway import models
from gateway.auth import Principal
from gateway.context import Gateway, gateway_of, requires
from gateway.problems import ProblemError
from gateway.routes.common import ERRORS, WindowEnd, WindowStart, v1_router
from gateway.routes.resources import read_availability
from gateway.routes.window_availability import WindowQueryParameters, read_window_availability
from gateway.stream import TooManyStreams, WindowKey

router = v1_router()

# What an `availability` event carries: a slotted or a windowed resource's.
StreamDocument = models.Availability | models.WindowAvailability

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


def _event_schema(document: str) -> dict[str, Any]:
    """One event of a stream whose `availability` events carry `document`, as
    Open API 3.1 describes a text/event-stream (each event an object of its
    fields; heartbeat comments are no events)."""
    return {"oneOf": [_availability_event(document), _CLOSED_EVENT]}


def _availability_event(document: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["event", "data", "id"],
        "properties": {
            "event": {"const": "availability"},
            "data": _json_data({"$ref": f"#/components/schemas/{document}"}),
            "id": {"type": "string", "pattern": r"^[0-9]{1,20}-[0-9]{1,20}$"},
        },
    }


_CLOSED_EVENT = {
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
}


def _stream_responses(document: str) -> dict[int | str, dict[str, Any]]:
    return {
        **ERRORS,
        200: {
            "content": {"text/event-stream": {"schema": _event_schema(document)}},
            "description": (
                f"`availability` events (data: the {document} document, id: the position"
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
    responses=_stream_responses("Availability"),
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
    whenever they change, heartbeats while they do not. Reconnect
    with `Last-Event-ID` to get what changed meanwhile. The stream ends when
    its API key is revoked or expires. An API key holds a limited number of
    streams at once (429 beyond)."""

    async def read(change_id: str) -> StreamDocument:
        return await read_availability(gw, who, resource_id, start, end, including=change_id)

    window_key = (who.tenant, str(resource_id), start.isoformat(), end.isoformat())
    return await _open_stream(gw, who, request, window_key, read, last_event_id)


@router.get(
    "/resources/{resource_id}/window-availability/stream",
    responses=_stream_responses("WindowAvailability"),
    response_class=StreamingResponse,
)
async def stream_window_availability(
    resource_id: uuid.UUID,
    query: WindowQueryParameters,
    request: Request,
    gw: Annotated[Gateway, Depends(gateway_of)],
    who: Annotated[Principal, Depends(requires("availability:read"))],
    last_event_id: LastEventId = None,
) -> StreamingResponse:
    """Server-Sent Events for a windowed resource: `availability` events with
    its window availability (as `/window-availability` with the same query)
    whenever a hold, a booking or its setup changes, and otherwise as
    `/availability/stream`."""

    async def read(change_id: str) -> StreamDocument:
        return await read_window_availability(gw, who, resource_id, query, including=change_id)

    window_key = (who.tenant, str(resource_id), "window", query.key)
    return await _open_stream(gw, who, request, window_key, read, last_event_id)


async def _open_stream(
    gw: Gateway,
    who: Principal,
    request: Request,
    window_key: WindowKey,
    read: Callable[[str], Awaitable[StreamDocument]],
    last_event_id: str | None,
) -> StreamingResponse:
    """Takes a place for the stream (429 without one), reads the first
    document (its errors, 404 say, before streaming) and streams."""
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
        first = await read("")
        events = _availability_events(
            gw, request, window_key, read, first, since, last_event_id is not None
        )
        response = _StreamResponse(events, place.pop_all())
    gw.metrics.sse_subscribers.inc()
    return response


async def _availability_events(
    gw: Gateway,
    request: Request,
    window_key: WindowKey,
    read: Callable[[str], Awaitable[StreamDocument]],
    first: StreamDocument,
    since: str,
    resuming: bool,
) -> AsyncIterator[str]:
    """The stream's events: `first` unless resuming from `since`, then one
    per change (read once per change for every subscriber of the window),
    heartbeats between, and a last one when the key stops being valid.
    `read(change_id)` names the change the answer must include: the
    availability service may not have applied it yet."""
    resource = (window_key[0], window_key[1])
    authorization = request.headers.get("authorization")
    with gw.hub.subscribe(resource) as changes, gw.stream_reads.watching(window_key):
        # Subscribed: from here on no change is missed. What changed after
        # `since` but before that (or while a resuming client was away) is
        # sent with the numbers read again.
        pending_id: str | None = await gw.hub.changed_since(resource, since)
        if pending_id is None and not resuming:
            yield _sse("availability", first.model_dump_json(), since)
        live = _live_events(gw, authorization, changes, window_key, read, pending_id)
        async with contextlib.aclosing(live):
            async for event in live:
                yield event


async def _live_events(
    gw: Gateway,
    authorization: str | None,
    changes: asyncio.Queue[str],
    window_key: WindowKey,
    read: Callable[[str], Awaitable[StreamDocument]],
    pending_id: str | None,
) -> AsyncGenerator[str, None]:
    """After the first event: one per change, heartbeats between, and a last
    one when the key stops being valid."""
    settings = gw.settings
    # The key is judged again this often, through the same cache as requests:
    # a revocation or expiry ends the stream within the cache time and this.
    key_check_seconds = min(settings.sse_heartbeat_seconds, max(settings.key_cache_seconds, 0.5))
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
            if (refused := await _key_trouble(gw, authorization)) is not None:
                ended = json.dumps({"reason": refused.reason, "detail": refused.detail})
                yield f"retry: {_RETRY_MS}\n" + _sse("closed", ended)
                return
        # No heartbeat when an event is about to go instead.
        if now >= next_heartbeat and (pending_id is None or read_again_at is not None):
            yield ": heartbeat\n\n"
            next_heartbeat = now + settings.sse_heartbeat_seconds
        if read_again_at is not None and now >= read_again_at:
            read_again_at = None


async def _key_trouble(gw: Gateway, authorization: str | None) -> ProblemError | None:
    """Why the stream's key is no longer valid (a 401), or None."""
    try:
        await gw.auth.principal(authorization)
    except ProblemError as refused:
        return refused if refused.status == 401 else None
    except Exception:  # the key store is unreachable: no verdict, keep streaming
        return None
    return None
