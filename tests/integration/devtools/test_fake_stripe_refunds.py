"""The fake Stripe, driven by the real `stripe` client: a refund retried with its
key refunds once, over-refunds and unknown intents are refused, and
charge.refunded is sent when enabled."""

from __future__ import annotations

import pytest
import stripe
from stripe.params import RefundCreateParams

from devtools.fakestripe import CHECKOUT_EVENTS, FakeStripe
from tests.support.fake_stripe import create_session
from tests.support.stripe import STRIPE_CLIENT_WARNING, WebhookReceiver

pytestmark = pytest.mark.filterwarnings(STRIPE_CLIENT_WARNING)


async def paid_intent(fake: FakeStripe, client: stripe.StripeClient) -> str:
    session = await create_session(client)
    event = await fake.pay(session.id)
    return str(event["data"]["object"]["payment_intent"])


async def test_a_refund_retried_with_its_key_refunds_once(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    intent_id = await paid_intent(fake, client)
    params: RefundCreateParams = {
        "payment_intent": intent_id,
        "amount": 2000,
        "metadata": {"hold_id": "hold-1"},
    }

    first = await client.v1.refunds.create_async(params, options={"idempotency_key": "refund-1"})
    second = await client.v1.refunds.create_async(params, options={"idempotency_key": "refund-1"})

    assert second.id == first.id
    assert (first.status, first.amount, first.payment_intent) == ("succeeded", 2000, intent_id)
    assert len(fake.store.refunds) == 1
    calls = fake.requests(method="POST", path="/v1/refunds")
    assert [(c.idempotency_key, c.replayed) for c in calls] == [
        ("refund-1", False),
        ("refund-1", True),
    ]
    intent = await client.v1.payment_intents.retrieve_async(intent_id)
    charge = await client.v1.charges.retrieve_async(str(intent.latest_charge))
    assert (charge.amount_refunded, charge.refunded) == (2000, False)


async def test_refunding_more_than_remains_is_refused(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    intent_id = await paid_intent(fake, client)
    await client.v1.refunds.create_async({"payment_intent": intent_id, "amount": 3000})

    with pytest.raises(stripe.InvalidRequestError) as raised:
        await client.v1.refunds.create_async({"payment_intent": intent_id, "amount": 2001})
    assert (raised.value.http_status, raised.value.param) == (400, "amount")

    rest = await client.v1.refunds.create_async({"payment_intent": intent_id})
    assert rest.amount == 2000
    charge = await client.v1.charges.retrieve_async(str(rest.charge))
    assert (charge.amount_refunded, charge.refunded) == (5000, True)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await client.v1.refunds.create_async({"payment_intent": intent_id})
    assert raised.value.code == "charge_already_refunded"


async def test_refunding_an_unknown_intent_is_a_400_resource_missing(
    client: stripe.StripeClient,
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await client.v1.refunds.create_async({"payment_intent": "pi_nothing"})
    assert (raised.value.http_status, raised.value.code) == (400, "resource_missing")
    assert raised.value.param == "payment_intent"


async def test_charge_refunded_is_sent_when_enabled(
    fake: FakeStripe, client: stripe.StripeClient, receiver: WebhookReceiver
) -> None:
    fake.configure_webhook(receiver.url, enabled_events=CHECKOUT_EVENTS | {"charge.refunded"})
    intent_id = await paid_intent(fake, client)

    await client.v1.refunds.create_async(
        {"payment_intent": intent_id}, options={"idempotency_key": "refund-all"}
    )

    _, refunded = await receiver.wait_for(2)
    assert refunded.event.type == "charge.refunded"
    assert refunded.event.data.object.refunded is True
    assert refunded.event.request is not None
    assert refunded.event.request.idempotency_key == "refund-all"
    assert refunded.event.data.previous_attributes is not None
