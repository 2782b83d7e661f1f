"""WebhookAdminService: operators list, inspect and replay stored events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import cast

import grpc
import httpx
import pytest

from devtools.fakestripe.objects import new_id
from holdfast.contracts.webhooks.v1 import webhook_admin_pb2 as pb
from holdfast.contracts.webhooks.v1 import webhook_admin_pb2_grpc
from services.webhooks.server import WebhooksApp
from tests.support.availability import eventually
from tests.support.booking import error_of
from tests.support.stripe_events import event, signed


@pytest.fixture
async def admin(
    webhooks_app: WebhooksApp,
) -> AsyncIterator[webhook_admin_pb2_grpc.WebhookAdminServiceAsyncStub]:
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{webhooks_app.port}")
    yield cast(
        "webhook_admin_pb2_grpc.WebhookAdminServiceAsyncStub",
        webhook_admin_pb2_grpc.WebhookAdminServiceStub(channel),
    )
    await channel.close()


async def test_events_are_listed_by_type_page_by_page_and_shown_whole(
    admin: webhook_admin_pb2_grpc.WebhookAdminServiceAsyncStub, stripe_http: httpx.AsyncClient
) -> None:
    kind = f"test.kind_{new_id('x', 8)}"  # a type only this test sends
    sent = [event(kind, {"id": new_id("obj"), "object": "thing"}) for _ in range(3)]
    for one in sent:
        body, headers = signed(one)
        assert (await stripe_http.post("/stripe/webhook", content=body, headers=headers)).is_success

    pages, token = [], ""
    while True:
        page = await admin.ListEvents(
            pb.ListEventsRequest(type=kind, page_size=2, page_token=token)
        )
        pages.append([e.event_id for e in page.events])
        token = page.next_page_token
        if not token:
            break
    shown = await eventually(
        lambda: admin.GetEvent(pb.GetEventRequest(event_id=str(sent[0]["id"]))),
        lambda r: r.event.status == pb.EVENT_STATUS_IGNORED,
    )

    assert [len(p) for p in pages] == [2, 1]
    assert sorted(i for p in pages for i in p) == sorted(str(e["id"]) for e in sent)
    assert shown.event.type == kind
    assert shown.event.outcome == "holdfast does not act on this event type"
    assert kind in shown.event.payload
    ignored = await error_of(admin.ReplayEvent(pb.ReplayEventRequest(event_id=str(sent[0]["id"]))))
    assert (ignored.code, ignored.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "EVENT_NOT_REPLAYABLE",
    )


async def test_unknown_and_malformed_ids_are_refused(
    admin: webhook_admin_pb2_grpc.WebhookAdminServiceAsyncStub,
) -> None:
    unknown = await error_of(admin.GetEvent(pb.GetEventRequest(event_id="evt_nothing_here")))
    malformed = await error_of(admin.ReplayEvent(pb.ReplayEventRequest(event_id="cus_123")))
    bad_token = await error_of(admin.ListEvents(pb.ListEventsRequest(page_token="garbage")))

    assert unknown.code == grpc.StatusCode.NOT_FOUND
    assert malformed.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in malformed.field_violations] == ["event_id"]
    assert [f for f, _ in bad_token.field_violations] == ["page_token"]
