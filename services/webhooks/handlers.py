"""WebhookAdminService: list, show and replay stored Stripe events."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from holdfast.contracts.webhooks.v1 import webhook_admin_pb2 as pb
from holdfast.contracts.webhooks.v1 import webhook_admin_pb2_grpc
from holdfast.platform import pagination
from holdfast.platform.errors import failed_precondition, not_found
from holdfast.platform.proto_time import timestamp
from holdfast.platform.validation import Violations
from services.webhooks.inbox import WAITING_STATUSES, StoredEvent
from services.webhooks.redaction import redact
from services.webhooks.repository import EventRepository

MAX_EVENT_ID = 255


def event_message(event: StoredEvent, *, with_payload: bool) -> pb.StripeEvent:
    message = pb.StripeEvent(
        event_id=event.event_id,
        type=event.type,
        object_id=event.object_id,
        status=pb.EventStatus.Value(f"EVENT_STATUS_{event.status}"),
        outcome=event.outcome,
        attempts=event.attempts,
        last_error=event.last_error or "",
        create_time=timestamp(event.created_at),
        receive_time=timestamp(event.received_at),
        correlation_id=event.correlation_id,
        # Only ever the allow-listed fields, even before the event is final.
        payload=redact(event.payload) if with_payload and event.payload is not None else "",
    )
    if event.processed_at is not None:
        message.process_time.CopyFrom(timestamp(event.processed_at))
    if event.status in WAITING_STATUSES:
        message.next_attempt_time.CopyFrom(timestamp(event.next_attempt_at))
    return message


def _is_event_id(value: str) -> bool:
    return value.startswith("evt_") and len(value) <= MAX_EVENT_ID


def _event_id(request_event_id: str) -> str:
    v = Violations()
    v.text("event_id", request_event_id, max_length=MAX_EVENT_ID)
    if request_event_id and not request_event_id.startswith("evt_"):
        v.add("event_id", "must be a Stripe event id (evt_...)")
    v.raise_if_any()
    return request_event_id


class WebhookAdminHandler(webhook_admin_pb2_grpc.WebhookAdminServiceServicer):
    def __init__(
        self,
        events: EventRepository,
        on_replayed: Callable[[], None],
        pages: pagination.PageTokens,
    ) -> None:
        self._events = events
        self._on_replayed = on_replayed
        self._pages = pages

    async def ListEvents(
        self, request: pb.ListEventsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListEventsResponse:
        v = Violations()
        size = pagination.page_size(v, request.page_size)
        statuses = []
        for i, status in enumerate(request.statuses):
            name = pb.EventStatus.Name(status) if status in pb.EventStatus.values() else ""
            if not name or status == pb.EVENT_STATUS_UNSPECIFIED:
                v.add(f"statuses[{i}]", "is not a known status")
            else:
                statuses.append(name.removeprefix("EVENT_STATUS_"))
        v.text("type", request.type, max_length=100, required=False)
        filters = [sorted(statuses), request.type]
        after = self._pages.decode(
            v, request.page_token, "ListEvents", filters, id_is_valid=_is_event_id
        )
        v.raise_if_any()
        found = await self._events.list(statuses, request.type, after, size + 1)
        page, token = self._pages.split_page(
            found,
            size,
            lambda e: pagination.Cursor(e.received_at, e.event_id),
            "ListEvents",
            filters,
        )
        return pb.ListEventsResponse(
            events=[event_message(e, with_payload=False) for e in page], next_page_token=token
        )

    async def GetEvent(
        self, request: pb.GetEventRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetEventResponse:
        event_id = _event_id(request.event_id)
        event = await self._events.get(event_id)
        if event is None:
            raise not_found("event", event_id)
        return pb.GetEventResponse(event=event_message(event, with_payload=True))

    async def ReplayEvent(
        self, request: pb.ReplayEventRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReplayEventResponse:
        event_id = _event_id(request.event_id)
        replayed = await self._events.replay(event_id)
        if replayed is None:
            current = await self._events.get(event_id)
            if current is None:
                raise not_found("event", event_id)
            raise failed_precondition(
                "EVENT_NOT_REPLAYABLE",
                f"only FAILED or DEAD events are replayed; this one is {current.status}",
                {"status": current.status},
            )
        self._on_replayed()
        return pb.ReplayEventResponse(event=event_message(replayed, with_payload=True))
