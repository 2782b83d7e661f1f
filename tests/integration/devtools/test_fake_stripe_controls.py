"""The fake Stripe, driven by the real `stripe` client: the fake can be slowed
down or taken down and brought back, its controls work over HTTP, and its
hosted page takes a payment."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import stripe

from devtools.fakestripe import FakeStripe, StartedRequest
from tests.support.availability import eventually
from tests.support.fake_stripe import create_session
from tests.support.stripe import STRIPE_CLIENT_WARNING, WebhookReceiver

pytestmark = pytest.mark.filterwarnings(STRIPE_CLIENT_WARNING)


# --- Stripe slow or down -------------------------------------------------------


async def test_a_slowed_down_stripe_holds_requests_in_flight_then_answers(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    session = await create_session(client)
    path = f"/v1/checkout/sessions/{session.id}/expire"
    fake.slow_down(0.5)

    expiring = asyncio.create_task(
        client.v1.checkout.sessions.expire_async(session.id, options={"idempotency_key": "exp-1"})
    )
    [started] = await _eventually_in_flight(fake, path)
    # Not taken up yet: nothing has happened at "Stripe" so far.
    assert (started.method, started.idempotency_key) == ("POST", "exp-1")
    assert fake.requests(path=path) == []
    assert fake.store.sessions[session.id]["status"] == "open"
    async with httpx.AsyncClient(base_url=f"{fake.base_url}/_fake") as http:
        control = await http.post("/latency", json={"seconds": 0.5})  # controls stay quick
    assert [r["path"] for r in control.json()["in_flight"]] == [path]

    expired = await expiring
    assert expired.status == "expired"
    assert fake.in_flight() == []
    fake.reset()
    assert fake.api_latency == 0.0


async def test_requests_held_up_are_answered_when_stripe_speeds_up(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    """A test can keep Stripe silent for as long as it needs (a latency
    longer than the test) and let it answer the moment it is done: the
    requests held up go by the latency set last."""
    session = await create_session(client)
    path = f"/v1/checkout/sessions/{session.id}/expire"
    fake.slow_down(3600)
    expiring = asyncio.create_task(
        client.v1.checkout.sessions.expire_async(session.id, options={"idempotency_key": "exp-1"})
    )
    await _eventually_in_flight(fake, path)
    fake.slow_down(1800)  # still well in the future for the held request
    await asyncio.sleep(0.1)
    still_held = fake.in_flight(path=path)

    fake.slow_down(0)
    async with asyncio.timeout(5):  # not an hour
        expired = await expiring

    assert [r.idempotency_key for r in still_held] == ["exp-1"]
    assert expired.status == "expired"
    assert fake.in_flight() == []


async def test_a_stripe_that_went_down_refuses_connections_until_it_comes_back(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    session = await create_session(client)
    base_url = fake.base_url

    await fake.go_down()
    with pytest.raises(stripe.APIConnectionError):
        await client.v1.checkout.sessions.retrieve_async(session.id)
    await fake.come_back()

    assert fake.base_url == base_url  # the same port again, and nothing forgotten
    assert (await client.v1.checkout.sessions.retrieve_async(session.id)).id == session.id


async def _eventually_in_flight(fake: FakeStripe, path: str) -> list[StartedRequest]:
    async def in_flight() -> list[StartedRequest]:
        return fake.in_flight(path=path)

    return await eventually(in_flight, bool)


# --- controls over HTTP and the hosted page -----------------------------------


async def test_the_controls_work_over_http(
    fake: FakeStripe, client: stripe.StripeClient, receiver: WebhookReceiver
) -> None:
    session = await create_session(client)
    async with httpx.AsyncClient(base_url=f"{fake.base_url}/_fake") as http:
        paid = await http.post(f"/checkout/sessions/{session.id}/pay", json={"deliver": False})
        event_id = paid.json()["id"]
        again = await http.post("/events/deliver", json={"events": [event_id], "copies": 2})
        waited = await http.post("/deliveries/wait", json={"timeout": 5})
        attempts = await http.get("/deliveries", params={"event_id": event_id})
        seen = await http.get("/requests", params={"path": "/v1/checkout/sessions"})
        events = await http.get("/events", params={"type": "checkout.session.completed"})
        twice = await http.post(f"/checkout/sessions/{session.id}/pay")

    assert paid.status_code == 200
    assert paid.json()["type"] == "checkout.session.completed"
    assert (again.status_code, waited.status_code) == (200, 200)
    assert [a["ok"] for a in attempts.json()["data"]] == [True, True]
    assert receiver.event_ids() == [event_id, event_id]
    assert [r["method"] for r in seen.json()["data"]] == ["POST"]
    assert [e["id"] for e in events.json()["data"]] == [event_id]
    assert twice.status_code == 400
    assert twice.json()["error"]["type"] == "invalid_request_error"


async def test_the_hosted_page_takes_the_payment_and_redirects(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    session = await create_session(client)
    assert session.url is not None
    async with httpx.AsyncClient() as http:
        page = await http.get(session.url)
        paid = await http.post(session.url, data={"action": "pay"})

    assert page.status_code == 200
    assert "5000 EUR" in page.text
    assert paid.status_code == 303
    assert paid.headers["location"] == f"https://shop.example/done?session={session.id}"
    after = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert (after.status, after.payment_status) == ("complete", "paid")
