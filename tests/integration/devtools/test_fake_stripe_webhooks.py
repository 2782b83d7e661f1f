"""The fake Stripe, driven by the real `stripe` client and checked by a webhook
receiver that verifies signatures as the real library does: paying sends
verified events, which can be duplicated, reordered, delayed, retried and
filtered."""

from __future__ import annotations

import asyncio
import itertools
import json
import time

import pytest
import stripe

from devtools.fakestripe import FakeStripe
from devtools.fakestripe.objects import shape
from tests.support.fake_stripe import FAST_RETRIES, create_session
from tests.support.stripe import STRIPE_CLIENT_WARNING, WebhookReceiver

pytestmark = pytest.mark.filterwarnings(STRIPE_CLIENT_WARNING)


async def test_paying_completes_the_session_and_sends_a_verified_event(
    fake: FakeStripe, client: stripe.StripeClient, receiver: WebhookReceiver
) -> None:
    session = await create_session(client)

    event = await fake.pay(session.id)

    (delivered,) = await receiver.wait_for(1)
    assert delivered.event.id == event["id"]
    assert delivered.event.type == "checkout.session.completed"
    assert delivered.event.api_version == fake.config.api_version
    paid = delivered.event.data.object
    assert (paid.id, paid.status, paid.payment_status) == (session.id, "complete", "paid")
    assert paid.to_dict()["metadata"] == {"hold_id": "hold-1", "tenant": "t-1"}
    assert set(json.loads(delivered.body)) == set(shape("event"))

    intent = await client.v1.payment_intents.retrieve_async(paid.payment_intent)
    assert (intent.status, intent.amount, intent.amount_received) == ("succeeded", 5000, 5000)
    assert intent.currency == "eur"
    # Stripe copies payment_intent_data's metadata to the intent, not the session's.
    assert intent.to_dict()["metadata"] == {"hold_id": "hold-1"}
    charge = await client.v1.charges.retrieve_async(str(intent.latest_charge))
    assert (charge.status, charge.paid, charge.refunded) == ("succeeded", True, False)

    await fake.wait_for_deliveries()
    assert fake.event(event["id"])["pending_webhooks"] == 0


async def test_expand_replaces_ids_with_objects(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    session = await create_session(client)
    await fake.pay(session.id)
    expanded = await client.v1.checkout.sessions.retrieve_async(
        session.id, {"expand": ["payment_intent.latest_charge"]}
    )
    assert isinstance(expanded.payment_intent, stripe.PaymentIntent)
    assert isinstance(expanded.payment_intent.latest_charge, stripe.Charge)
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.checkout.sessions.retrieve_async(session.id, {"expand": ["currency"]})


async def test_duplicates_arrive_as_the_same_event_n_times(
    fake: FakeStripe, client: stripe.StripeClient, receiver: WebhookReceiver
) -> None:
    session = await create_session(client)
    event = await fake.pay(session.id, deliver=False)

    await fake.deliver(event["id"], copies=5)

    received = await receiver.wait_for(5)
    assert {r.event.id for r in received} == {event["id"]}
    await fake.wait_for_deliveries()
    attempts = fake.deliveries(event["id"])
    assert sorted(a.delivery for a in attempts) == [1, 2, 3, 4, 5]
    assert all(a.ok for a in attempts)


async def test_events_arrive_in_the_order_asked_for(
    fake: FakeStripe, client: stripe.StripeClient, receiver: WebhookReceiver
) -> None:
    session = await create_session(client)
    completed = await fake.pay(session.id, async_payment=True, deliver=False)
    assert completed["data"]["object"]["payment_status"] == "unpaid"
    succeeded = await fake.finish_async_payment(session.id, deliver=False)

    await fake.deliver(succeeded["id"], completed["id"])

    await receiver.wait_for(2)
    assert receiver.event_ids() == [succeeded["id"], completed["id"]]
    assert [r.event.type for r in receiver.received] == [
        "checkout.session.async_payment_succeeded",
        "checkout.session.completed",
    ]
    paid = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert paid.payment_status == "paid"


async def test_a_failed_async_payment_leaves_nothing_to_refund(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    session = await create_session(client)
    await fake.pay(session.id, async_payment=True)
    event = await fake.finish_async_payment(session.id, succeeded=False)

    assert event["type"] == "checkout.session.async_payment_failed"
    assert event["data"]["object"]["payment_status"] == "unpaid"
    intent_id = event["data"]["object"]["payment_intent"]
    intent = await client.v1.payment_intents.retrieve_async(intent_id)
    assert intent.status == "requires_payment_method"
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.refunds.create_async({"payment_intent": intent_id})


async def test_a_late_event_arrives_after_its_delay(
    fake: FakeStripe, client: stripe.StripeClient, receiver: WebhookReceiver
) -> None:
    session = await create_session(client)
    event = await fake.pay(session.id, deliver=False)

    await fake.deliver(event["id"], delay=0.5)

    await asyncio.sleep(0.25)
    assert receiver.received == []
    (delivered,) = await receiver.wait_for(1)
    assert delivered.event.id == event["id"]


async def test_failed_deliveries_are_retried_with_growing_backoff(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    async with WebhookReceiver(fake.webhook_secret, statuses=[500, 503]) as flaky:
        fake.configure_webhook(flaky.url)
        session = await create_session(client)
        event = await fake.pay(session.id)
        async with asyncio.timeout(5):
            await fake.wait_for_deliveries()

    attempts = fake.deliveries(event["id"])
    assert [(a.attempt, a.status) for a in attempts] == [(1, 500), (2, 503), (3, 200)]
    gaps = [b.started_at - a.started_at for a, b in itertools.pairwise(attempts)]
    assert gaps[0] >= FAST_RETRIES.backoff(1)
    assert gaps[1] >= FAST_RETRIES.backoff(2) > FAST_RETRIES.backoff(1)
    # Every attempt signed afresh, and valid.
    assert len(flaky.received) == 3
    assert flaky.rejected == []


async def test_an_unreachable_endpoint_gets_a_bounded_number_of_attempts(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    async with WebhookReceiver(fake.webhook_secret) as gone:
        url = gone.url
    fake.configure_webhook(url)
    session = await create_session(client)
    event = await fake.pay(session.id)
    async with asyncio.timeout(5):
        await fake.wait_for_deliveries()

    attempts = fake.deliveries(event["id"])
    assert [a.attempt for a in attempts] == [1, 2, 3]
    assert all(a.status is None and a.error for a in attempts)
    assert fake.event(event["id"])["pending_webhooks"] == 1


async def test_only_enabled_event_types_are_sent(
    fake: FakeStripe, client: stripe.StripeClient, receiver: WebhookReceiver
) -> None:
    session = await create_session(client)
    await fake.pay(session.id)
    await fake.wait_for_deliveries()

    assert [r.event.type for r in receiver.received] == ["checkout.session.completed"]
    created = {e["type"] for e in fake.events()}
    assert {"payment_intent.succeeded", "charge.succeeded"} <= created


# --- signatures ---------------------------------------------------------------


def test_sign_makes_headers_stripe_accepts_or_rejects_as_asked(fake: FakeStripe) -> None:
    payload = json.dumps({"id": "evt_1", "object": "event", "type": "ping"})
    secret = fake.webhook_secret

    event = stripe.Webhook.construct_event(payload, fake.sign(payload), secret)
    assert event.id == "evt_1"
    stale = fake.sign(payload, timestamp=int(time.time()) - 301)
    with pytest.raises(stripe.SignatureVerificationError, match="tolerance"):
        stripe.Webhook.construct_event(payload, stale, secret)
    wrong = fake.sign(payload, secret="whsec_someone_else")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, wrong, secret)
