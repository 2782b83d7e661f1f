"""The webhook receiver: only genuine, recent Stripe events are stored, each
once, and Stripe is answered at once."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any

import asyncpg
import httpx
import pytest
from opentelemetry import trace

from devtools.fakestripe.objects import new_id
from tests.support.availability import eventually
from tests.support.booking import BookingClient
from tests.support.db import audit_actions
from tests.support.stripe_events import OLD_SECRET, SECRET, checkout_session, event, signed

WEBHOOK = "/stripe/webhook"


def customer_event() -> dict[str, object]:
    """An event of a type holdfast stores but does not act on."""
    return event("customer.created", {"id": new_id("cus"), "object": "customer"})


async def stored(db: asyncpg.Pool, event_id: str) -> Any:
    """The event's inbox row (status, outcome, attempts), or None."""
    return await db.fetchrow(
        "SELECT status, outcome, attempts FROM stripe_events WHERE event_id = $1", event_id
    )


async def applied(db: asyncpg.Pool, event_id: str) -> Any:
    return await eventually(
        lambda: stored(db, event_id), lambda row: row is not None and row["status"] == "APPLIED"
    )


async def test_a_signed_event_is_stored_and_acknowledged(
    stripe_http: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    sent = customer_event()
    body, headers = signed(sent)

    response = await stripe_http.post(WEBHOOK, content=body, headers=headers)

    assert response.status_code == 200
    assert response.json() == {"received": True, "duplicate": False}
    row = await eventually(
        lambda: stored(db, str(sent["id"])), lambda r: r is not None and r["status"] != "PENDING"
    )
    assert row["status"] == "IGNORED"
    assert row["outcome"] == "holdfast does not act on this event type"


async def test_both_secrets_of_a_rotation_are_accepted(
    stripe_http: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    for secret in (SECRET, OLD_SECRET):
        sent = customer_event()
        body, headers = signed(sent, secret)
        response = await stripe_http.post(WEBHOOK, content=body, headers=headers)
        assert response.status_code == 200
        assert await stored(db, str(sent["id"])) is not None


def _tampered() -> tuple[bytes, dict[str, str]]:
    body, headers = signed(customer_event())
    return body.replace(b"customer.created", b"customer.deleted"), headers


def _with_header(value: str) -> tuple[bytes, dict[str, str]]:
    body, headers = signed(customer_event())
    return body, {**headers, "Stripe-Signature": value}


def _without_header() -> tuple[bytes, dict[str, str]]:
    body, _ = signed(customer_event())
    return body, {"Content-Type": "application/json"}


REFUSED = {
    "tampered body": (_tampered, "no signature matches"),
    "wrong secret": (lambda: signed(customer_event(), "whsec_someone_else"), "no signature"),
    "old timestamp": (lambda: signed(customer_event(), timestamp=time.time() - 301), "too old"),
    "future timestamp": (
        lambda: signed(customer_event(), timestamp=time.time() + 301),
        "in the future",
    ),
    "missing header": (_without_header, "missing"),
    "malformed header": (lambda: _with_header("v1=abc,garbage"), "no valid timestamp"),
    "not JSON": (lambda: signed(b"this is not json"), "not a Stripe event"),
    "JSON but no event": (lambda: signed(b'{"object": "customer"}'), "not a Stripe event"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
async def test_anything_not_genuine_is_refused_and_nothing_stored(
    stripe_http: httpx.AsyncClient, db: asyncpg.Pool, case: str
) -> None:
    make, says = REFUSED[case]
    body, headers = make()
    before = await db.fetchval("SELECT count(*) FROM stripe_events")

    response = await stripe_http.post(WEBHOOK, content=body, headers=headers)

    assert response.status_code == 400
    assert says in response.json()["error"]
    assert await db.fetchval("SELECT count(*) FROM stripe_events") == before


async def test_an_oversized_body_is_refused(
    stripe_http: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    huge = customer_event()
    huge["data"] = {"object": {"id": "cus_x", "object": "customer", "note": "x" * 300_000}}
    body, headers = signed(huge)
    before = await db.fetchval("SELECT count(*) FROM stripe_events")

    response = await stripe_http.post(WEBHOOK, content=body, headers=headers)

    assert response.status_code == 413
    assert await db.fetchval("SELECT count(*) FROM stripe_events") == before


async def test_twenty_concurrent_deliveries_confirm_once(
    stripe_http: httpx.AsyncClient, client: BookingClient, db: asyncpg.Pool, tenant: str
) -> None:
    resource, [slot] = await client.resource_with_slots(capacity=3)
    hold = await client.hold(resource.resource_id, [slot.slot_id])
    completed = event("checkout.session.completed", checkout_session(hold.hold_id, tenant))
    body, headers = signed(completed)

    responses = await asyncio.gather(
        *(stripe_http.post(WEBHOOK, content=body, headers=headers) for _ in range(20))
    )

    assert [r.status_code for r in responses] == [200] * 20
    assert sum(not r.json()["duplicate"] for r in responses) == 1
    row = await applied(db, str(completed["id"]))
    assert row["outcome"] == "confirmed"
    actions = await audit_actions(db, tenant, hold.hold_id)
    assert actions.count("hold.confirmed") == 1


async def test_completed_and_async_succeeded_for_one_session_confirm_once(
    stripe_http: httpx.AsyncClient, client: BookingClient, db: asyncpg.Pool, tenant: str
) -> None:
    resource, [slot] = await client.resource_with_slots(capacity=3)
    hold = await client.hold(resource.resource_id, [slot.slot_id])
    session = checkout_session(hold.hold_id, tenant)
    first = event("checkout.session.completed", session)
    second = event("checkout.session.async_payment_succeeded", session)

    for sent in (first, second):
        body, headers = signed(sent)
        assert (await stripe_http.post(WEBHOOK, content=body, headers=headers)).status_code == 200

    for sent in (first, second):
        await applied(db, str(sent["id"]))
    assert (await audit_actions(db, tenant, hold.hold_id)).count("hold.confirmed") == 1
    booked = await client.slot(resource.resource_id, slot.slot_id)
    assert (booked.held, booked.booked) == (0, 1)


async def test_a_request_id_grpc_could_not_carry_is_replaced(
    stripe_http: httpx.AsyncClient, client: BookingClient, db: asyncpg.Pool, tenant: str
) -> None:
    resource, [slot] = await client.resource_with_slots(capacity=1)
    hold = await client.hold(resource.resource_id, [slot.slot_id])
    sent = event("checkout.session.completed", checkout_session(hold.hold_id, tenant))
    body, headers = signed(sent)

    raw_headers = [(k.encode(), v.encode()) for k, v in headers.items()]
    response = await stripe_http.post(
        WEBHOOK, content=body, headers=[*raw_headers, (b"X-Request-Id", "café".encode())]
    )

    stored_id = response.headers["X-Request-Id"]
    assert stored_id.isascii()
    # Applied through the booking service, with the replacement in its metadata.
    assert (await applied(db, str(sent["id"])))["outcome"] == "confirmed"
    assert (
        await db.fetchval(
            "SELECT correlation_id FROM stripe_events WHERE event_id = $1", sent["id"]
        )
        == stored_id
    )


class _TraceOfEachLine(logging.Handler):
    """The trace id current when each receiver log line is written."""

    def __init__(self) -> None:
        super().__init__()
        self.trace_ids: list[int] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.trace_ids.append(trace.get_current_span().get_span_context().trace_id)


async def test_a_delivery_continues_the_senders_trace(stripe_http: httpx.AsyncClient) -> None:
    # Without an exporter the receiver makes only the delivery's span
    # current; its log lines still carry the trace id the sender sent.
    trace_id = secrets.token_hex(16)
    body, headers = signed(customer_event())
    headers["traceparent"] = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    lines = _TraceOfEachLine()
    receiver_log = logging.getLogger("services.webhooks.receiver")
    level = receiver_log.level
    receiver_log.addHandler(lines)
    receiver_log.setLevel(logging.INFO)  # its "received" line
    try:
        response = await stripe_http.post(WEBHOOK, content=body, headers=headers)
    finally:
        receiver_log.removeHandler(lines)
        receiver_log.setLevel(level)

    assert response.status_code == 200
    assert lines.trace_ids == [int(trace_id, 16)]
