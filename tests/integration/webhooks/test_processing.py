"""The processor when things fail: the booking service down, the database down
at receipt, and events that can never apply. Each test has a database of its
own, so no other test's processor touches its inbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import grpc
import httpx

from holdfast.contracts.webhooks.v1 import webhook_admin_pb2 as pb
from holdfast.contracts.webhooks.v1 import webhook_admin_pb2_grpc
from services.webhooks.server import WebhooksApp
from tests.support.availability import eventually
from tests.support.booking import BookingClient
from tests.support.env import database_name
from tests.support.metrics import sample
from tests.support.services import running_booking, running_webhooks
from tests.support.stripe_events import checkout_session, event, signed
from tests.support.tcp_proxy import TcpProxy

WEBHOOK = "/stripe/webhook"


async def _gauge(app: WebhooksApp, name: str) -> float:
    return sample(app, name)


async def row_of(db: asyncpg.Pool, event_id: str) -> Any:
    return await db.fetchrow(
        "SELECT status, outcome, attempts, last_error FROM stripe_events WHERE event_id = $1",
        event_id,
    )


@asynccontextmanager
async def stack(
    own_database: str, tenant: str, **webhook_settings: object
) -> AsyncIterator[tuple[BookingClient, TcpProxy, WebhooksApp, httpx.AsyncClient, asyncpg.Pool]]:
    """A booking service, a webhook service reaching it through a proxy the
    test can cut, an HTTP client of the receiver and a pool on the database."""
    async with running_booking(own_database) as booking:
        proxy = TcpProxy("127.0.0.1", booking.port)
        await proxy.start()
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{booking.port}") as channel,
            running_webhooks(own_database, proxy.address, **webhook_settings) as webhooks,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{webhooks.http_port}") as http,
            asyncpg.create_pool(own_database, min_size=1, max_size=2) as db,
        ):
            try:
                yield BookingClient.on(channel, tenant), proxy, webhooks, http, db
            finally:
                await proxy.cut()


async def test_events_wait_while_the_booking_service_is_down(
    own_database: str, tenant: str
) -> None:
    async with stack(
        own_database, tenant, processor_max_attempts=50, booking_call_timeout_seconds=1.0
    ) as (
        client,
        proxy,
        webhooks,
        http,
        db,
    ):
        resource, [slot] = await client.resource_with_slots(capacity=2)
        hold = await client.hold(resource.resource_id, [slot.slot_id])
        await proxy.cut()

        sent = event("checkout.session.completed", checkout_session(hold.hold_id, tenant))
        body, headers = signed(sent)
        response = await http.post(WEBHOOK, content=body, headers=headers)
        assert response.status_code == 200  # stored; applying it waits

        # Each attempt waits up to the call deadline (1 s here) for the service.
        failing = await eventually(
            lambda: row_of(db, str(sent["id"])), lambda r: r["attempts"] >= 2, within=15
        )
        assert failing["status"] == "FAILED"
        assert failing["last_error"].startswith("booking service: DEADLINE_EXCEEDED")
        assert sample(webhooks, "holdfast_webhook_retries_total") >= 1

        await proxy.start()
        done = await eventually(
            lambda: row_of(db, str(sent["id"])), lambda r: r["status"] == "APPLIED"
        )
        assert done["outcome"] == "confirmed"
        confirmed = await client.slot(resource.resource_id, slot.slot_id)
        assert (confirmed.held, confirmed.booked) == (0, 1)


async def test_the_database_down_at_receipt_answers_503_and_a_redelivery_succeeds(
    own_database: str, database_url: str, tenant: str
) -> None:
    async with stack(own_database, tenant) as (client, _, _webhooks, http, db):
        resource, [slot] = await client.resource_with_slots(capacity=2)
        hold = await client.hold(resource.resource_id, [slot.slot_id])
        sent = event("checkout.session.completed", checkout_session(hold.hold_id, tenant))
        body, headers = signed(sent)
        name = database_name(own_database)
        admin = await asyncpg.connect(database_url)
        try:
            # The database refuses the webhook service: no new connections,
            # and the ones it has are gone.
            await admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'holdfast-webhooks' AND datname = $1",
                name,
            )
            refused = await http.post(WEBHOOK, content=body, headers=headers)
        finally:
            try:
                await admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
            finally:
                await admin.close()
        assert refused.status_code == 503  # Stripe will deliver it again
        assert refused.headers["Retry-After"] == "1"

        redelivered = await http.post(WEBHOOK, content=body, headers=headers)
        assert redelivered.status_code == 200
        done = await eventually(
            lambda: row_of(db, str(sent["id"])),
            lambda r: r is not None and r["status"] == "APPLIED",
        )
        assert done["outcome"] == "confirmed"


async def test_dead_letters_and_their_replay(own_database: str, tenant: str) -> None:
    async with stack(own_database, tenant, processor_max_attempts=2) as (
        client,
        proxy,
        webhooks,
        http,
        db,
    ):
        resource, [slot] = await client.resource_with_slots(capacity=2)
        hold = await client.hold(resource.resource_id, [slot.slot_id])
        await proxy.cut()
        sent = event("checkout.session.completed", checkout_session(hold.hold_id, tenant))
        body, headers = signed(sent)
        assert (await http.post(WEBHOOK, content=body, headers=headers)).status_code == 200

        dead = await eventually(
            lambda: row_of(db, str(sent["id"])), lambda r: r["status"] == "DEAD", within=15
        )
        assert dead["attempts"] == 2
        assert "gave up after 2 attempts" in dead["last_error"]
        assert sample(webhooks, "holdfast_webhook_dead_letters_total") == 1
        await eventually(
            lambda: _gauge(webhooks, "holdfast_webhook_dead_letter_backlog"), lambda n: n == 1
        )

        await proxy.start()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{webhooks.port}") as channel:
            admin = webhook_admin_pb2_grpc.WebhookAdminServiceStub(channel)
            listed = await admin.ListEvents(pb.ListEventsRequest(statuses=[pb.EVENT_STATUS_DEAD]))
            assert [e.event_id for e in listed.events] == [sent["id"]]
            replayed = await admin.ReplayEvent(pb.ReplayEventRequest(event_id=str(sent["id"])))
            assert replayed.event.status == pb.EVENT_STATUS_PENDING

            done = await eventually(
                lambda: row_of(db, str(sent["id"])), lambda r: r["status"] == "APPLIED"
            )
            assert done["outcome"] == "confirmed"
            await eventually(
                lambda: _gauge(webhooks, "holdfast_webhook_dead_letter_backlog"),
                lambda n: n == 0,
            )
            again = (
                await admin.ReplayEvent.with_call(pb.ReplayEventRequest(event_id=str(sent["id"])))
                if False
                else None
            )
            del again
        confirmed = await client.slot(resource.resource_id, slot.slot_id)
        assert (confirmed.held, confirmed.booked) == (0, 1)


async def test_an_event_naming_no_hold_is_dead_at_once(own_database: str, tenant: str) -> None:
    async with stack(own_database, tenant) as (_, _, _webhooks, http, db):
        session = checkout_session("", tenant)
        session["metadata"] = {}
        session["client_reference_id"] = None
        sent = event("checkout.session.completed", session)
        body, headers = signed(sent)
        assert (await http.post(WEBHOOK, content=body, headers=headers)).status_code == 200

        dead = await eventually(
            lambda: row_of(db, str(sent["id"])), lambda r: r["status"] == "DEAD"
        )
        assert dead["attempts"] == 1
        assert "tenant_id" in dead["last_error"]
