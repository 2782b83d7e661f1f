"""Stripe events lose their personal data once final, and are deleted after
the retention: the inbox row and the admin API never keep or show a
customer's name, email, phone or address beyond what applying needs.

Each test has a database of its own (see test_webhook_processing's stack:
a booking service reached through a proxy the test can cut)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import asyncpg
import grpc

from holdfast.contracts.booking.v1 import booking_pb2
from holdfast.contracts.webhooks.v1 import webhook_admin_pb2 as pb
from holdfast.contracts.webhooks.v1 import webhook_admin_pb2_grpc
from services.webhooks.server import WebhooksApp
from tests.integration.webhooks.test_processing import WEBHOOK, stack
from tests.support.availability import eventually
from tests.support.booking import BookingClient
from tests.support.metrics import sample
from tests.support.services import running_webhooks
from tests.support.stripe_events import (
    checkout_session,
    event,
    personal_data_in,
    signed,
    with_customer,
)


async def stored(db: asyncpg.Pool, event_id: str) -> Any:
    return await db.fetchrow(
        "SELECT status, outcome, attempts, payload, redacted_at FROM stripe_events"
        " WHERE event_id = $1",
        event_id,
    )


@asynccontextmanager
async def admin_of(
    webhooks: WebhooksApp,
) -> AsyncIterator[webhook_admin_pb2_grpc.WebhookAdminServiceAsyncStub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{webhooks.port}") as channel:
        yield cast(
            "webhook_admin_pb2_grpc.WebhookAdminServiceAsyncStub",
            webhook_admin_pb2_grpc.WebhookAdminServiceStub(channel),
        )


async def paid_for(client: BookingClient, tenant: str) -> tuple[str, dict[str, Any]]:
    """A hold, and the checkout.session.completed event paying for it, with
    the customer's details where Stripe puts them."""
    resource, [slot] = await client.resource_with_slots(capacity=2)
    hold = await client.hold(resource.resource_id, [slot.slot_id])
    session = with_customer(checkout_session(hold.hold_id, tenant))
    return hold.hold_id, event("checkout.session.completed", session)


async def test_an_applied_event_keeps_no_personal_data_and_the_admin_api_shows_none(
    own_database: str, tenant: str
) -> None:
    async with stack(own_database, tenant) as (client, _, webhooks, http, db):
        hold_id, sent = await paid_for(client, tenant)
        body, headers = signed(sent)
        assert personal_data_in(body.decode())
        assert (await http.post(WEBHOOK, content=body, headers=headers)).status_code == 200

        row = await eventually(
            lambda: stored(db, str(sent["id"])), lambda r: r["status"] == "APPLIED"
        )
        assert row["outcome"] == "confirmed"
        assert row["redacted_at"] is not None
        assert personal_data_in(row["payload"]) == []
        kept = json.loads(row["payload"])
        session = sent["data"]["object"]
        assert (kept["id"], kept["type"]) == (sent["id"], "checkout.session.completed")
        assert {k: kept["data"]["object"][k] for k in ("id", "amount_total", "payment_intent")} == {
            k: session[k] for k in ("id", "amount_total", "payment_intent")
        }
        assert kept["data"]["object"]["metadata"] == {"hold_id": hold_id, "tenant_id": tenant}
        async with admin_of(webhooks) as admin:
            shown = await admin.GetEvent(pb.GetEventRequest(event_id=str(sent["id"])))
        assert json.loads(shown.event.payload) == kept


async def test_a_failing_event_keeps_its_body_until_final_but_the_admin_api_never_shows_it(
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
        _, sent = await paid_for(client, tenant)
        await proxy.cut()
        body, headers = signed(sent)
        assert (await http.post(WEBHOOK, content=body, headers=headers)).status_code == 200

        failing = await eventually(
            lambda: stored(db, str(sent["id"])), lambda r: r["status"] == "FAILED", within=15
        )
        # A retry still has the body exactly as Stripe sent (and signed) it...
        assert (failing["payload"], failing["redacted_at"]) == (body.decode(), None)
        async with admin_of(webhooks) as admin:
            shown = await admin.GetEvent(pb.GetEventRequest(event_id=str(sent["id"])))
        # ...which operators never see.
        assert shown.event.status == pb.EVENT_STATUS_FAILED
        assert personal_data_in(shown.event.payload) == []

        await proxy.start()
        done = await eventually(
            lambda: stored(db, str(sent["id"])), lambda r: r["status"] == "APPLIED"
        )
        assert done["outcome"] == "confirmed"
        assert personal_data_in(done["payload"]) == []


async def test_a_dead_letter_is_redacted_and_replays_from_what_was_kept(
    own_database: str, tenant: str
) -> None:
    async with stack(own_database, tenant, processor_max_attempts=1) as (
        client,
        proxy,
        webhooks,
        http,
        db,
    ):
        hold_id, sent = await paid_for(client, tenant)
        await proxy.cut()
        body, headers = signed(sent)
        assert (await http.post(WEBHOOK, content=body, headers=headers)).status_code == 200
        dead = await eventually(
            lambda: stored(db, str(sent["id"])), lambda r: r["status"] == "DEAD", within=15
        )
        assert dead["redacted_at"] is not None
        assert personal_data_in(dead["payload"]) == []

        await proxy.start()
        async with admin_of(webhooks) as admin:
            replayed = await admin.ReplayEvent(pb.ReplayEventRequest(event_id=str(sent["id"])))
        assert personal_data_in(replayed.event.payload) == []
        done = await eventually(
            lambda: stored(db, str(sent["id"])), lambda r: r["status"] == "APPLIED"
        )
        assert done["outcome"] == "confirmed"
        booking = await client.booking.GetHold(
            booking_pb2.GetHoldRequest(hold_id=hold_id), metadata=client.md
        )
        assert booking.hold.payment_ref == sent["data"]["object"]["payment_intent"]


async def test_the_sweep_redacts_older_final_events_and_deletes_them_after_the_retention(
    own_database: str, tenant: str
) -> None:
    # Rows as an inbox holds them from before redaction existed: final,
    # their payloads as received.
    session = with_customer(checkout_session("hold-1", tenant))
    body = json.dumps(event("checkout.session.completed", session))
    ages = {  # event id: (status, days since receipt)
        "evt_old_applied": ("APPLIED", 40),
        "evt_old_ignored": ("IGNORED", 31),
        "evt_old_dead": ("DEAD", 40),
        "evt_old_failing": ("FAILED", 40),
        "evt_recent_applied": ("APPLIED", 29),
    }
    async with asyncpg.create_pool(own_database, min_size=1, max_size=2) as db:
        for event_id, (status, days) in ages.items():
            await db.execute(
                """
                INSERT INTO stripe_events (event_id, type, object_id, created_at, livemode,
                                           payload, status, received_at, next_attempt_at)
                VALUES ($1, 'checkout.session.completed', $2, now(), false, $3, $4,
                        now() - make_interval(days => $5), now() + interval '1 day')
                """,
                event_id,
                f"cs_{event_id}",
                body,
                status,
                days,
            )
        # Nothing for the processor to do: the failing event is due tomorrow.
        async with running_webhooks(own_database, "127.0.0.1:1") as webhooks:
            # A sweep deletes first and redacts after: it is over when both
            # counts are in (the deleted count alone comes while it redacts).
            swept = await eventually(lambda: _swept(webhooks), lambda counts: counts == (2, 2))
        assert swept == (2, 2)  # (deleted, redacted)
        rows = {
            row["event_id"]: row
            for row in await db.fetch("SELECT event_id, payload, redacted_at FROM stripe_events")
        }
    # Past the retention (30 days): applied and ignored events go; a dead
    # letter waits for an operator, a failing event for its retry.
    assert sorted(rows) == ["evt_old_dead", "evt_old_failing", "evt_recent_applied"]
    for kept in ("evt_old_dead", "evt_recent_applied"):
        assert rows[kept]["redacted_at"] is not None
        assert personal_data_in(rows[kept]["payload"]) == []
    assert (rows["evt_old_failing"]["payload"], rows["evt_old_failing"]["redacted_at"]) == (
        body,
        None,
    )


async def _swept(app: WebhooksApp) -> tuple[float, float]:
    return (
        sample(app, "holdfast_webhook_events_deleted_total"),
        sample(app, "holdfast_webhook_events_redacted_total"),
    )
