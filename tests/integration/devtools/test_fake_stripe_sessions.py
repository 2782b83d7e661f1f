"""The fake Stripe, driven by the real `stripe` client: checkout sessions have
Stripe's shape, refuse the parameters Stripe refuses, and expire."""

from __future__ import annotations

import time

import pytest
import stripe

from devtools.fakestripe import FakeStripe, StripeError
from devtools.fakestripe.objects import shape
from tests.support.fake_stripe import create_session
from tests.support.stripe import STRIPE_CLIENT_WARNING, WebhookReceiver

pytestmark = pytest.mark.filterwarnings(STRIPE_CLIENT_WARNING)


async def test_a_session_has_stripes_shape_and_the_amounts_asked_for(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    expires_at = int(time.time()) + 45 * 60
    session = await create_session(client, expires_at=expires_at)

    assert session.id.startswith("cs_test_")
    assert set(session.to_dict()) == set(shape("checkout.session"))
    assert session.object == "checkout.session"
    assert (session.status, session.payment_status, session.mode) == ("open", "unpaid", "payment")
    assert (session.amount_subtotal, session.amount_total, session.currency) == (5000, 5000, "eur")
    assert session.client_reference_id == "hold-1"
    assert session.to_dict()["metadata"] == {"hold_id": "hold-1", "tenant": "t-1"}
    assert session.expires_at == expires_at
    assert abs(session.created - time.time()) < 5
    assert session.payment_intent is None
    assert session.livemode is False
    assert session.url == f"{fake.base_url}/pay/{session.id}"
    assert session.success_url == "https://shop.example/done?session={CHECKOUT_SESSION_ID}"


async def test_retrieve_answers_the_same_session(client: stripe.StripeClient) -> None:
    session = await create_session(client)
    again = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert again.to_dict() == session.to_dict()


@pytest.mark.parametrize(
    ("minutes", "message"),
    [
        (29, "must be at least 30 minutes from Checkout Session creation"),
        (-5, "must be at least 30 minutes from Checkout Session creation"),
        (24 * 60 + 5, "must be less than 24 hours from Checkout Session creation"),
    ],
)
async def test_expires_at_must_be_30_minutes_to_24_hours_ahead(
    client: stripe.StripeClient, minutes: int, message: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await create_session(client, expires_at=int(time.time()) + minutes * 60)
    assert raised.value.http_status == 400
    assert raised.value.param == "expires_at"
    assert message in str(raised.value.user_message)


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"line_items": None}, "line_items"),
        ({"mode": None}, "mode"),
        ({"mode": "subscription"}, "mode"),
        ({"colour": "blue"}, "colour"),
        ({"line_items": [{"price_data": {"currency": "eur", "unit_amount": 1}}]}, None),
        ({"success_url": "not a url"}, "success_url"),
        ({"metadata": {"k": "x" * 501}}, "metadata[k]"),
    ],
)
async def test_bad_parameters_are_refused_naming_the_parameter(
    client: stripe.StripeClient, overrides: dict[str, object], param: str | None
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await create_session(client, **overrides)
    assert raised.value.http_status == 400
    if param is not None:
        assert raised.value.param == param
    else:
        assert str(raised.value.param).startswith("line_items[0]")


@pytest.mark.parametrize(
    ("currency", "unit_amount", "quantity", "code"),
    [
        ("eur", 49, 1, "amount_too_small"),
        ("eur", 25, 2, None),
        ("gbp", 29, 1, "amount_too_small"),
        ("gbp", 30, 1, None),
        ("jpy", 49, 1, "amount_too_small"),
        ("jpy", 50, 1, None),
        ("usd", 0, 3, "amount_too_small"),
        ("usd", 99_999_999, 1, None),
        ("usd", 50_000_000, 2, "amount_too_large"),
    ],
)
async def test_a_total_below_the_currencys_minimum_or_above_the_maximum_is_refused(
    client: stripe.StripeClient, currency: str, unit_amount: int, quantity: int, code: str | None
) -> None:
    item = {
        "price_data": {
            "currency": currency,
            "unit_amount": unit_amount,
            "product_data": {"name": "Harbour tour"},
        },
        "quantity": quantity,
    }
    if code is None:
        session = await create_session(client, line_items=[item])
        assert session.amount_total == unit_amount * quantity
        return
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await create_session(client, line_items=[item])
    assert (raised.value.http_status, raised.value.code) == (400, code)
    assert raised.value.param == "line_items"


@pytest.mark.parametrize("url", ["http://", "https:///done", "http://:8080/done", "/done"])
async def test_a_url_without_a_host_is_refused(client: stripe.StripeClient, url: str) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await create_session(client, success_url=url)
    assert (raised.value.param, raised.value.code) == ("success_url", "url_invalid")


async def test_expire_expires_an_open_session_once(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    session = await create_session(client)

    expired = await client.v1.checkout.sessions.expire_async(
        session.id, options={"idempotency_key": "expire-1"}
    )
    assert (expired.status, expired.url, expired.payment_status) == ("expired", None, "unpaid")
    (event,) = fake.events("checkout.session.expired")
    assert event["data"]["object"]["id"] == session.id
    assert event["request"]["idempotency_key"] == "expire-1"
    assert event["request"]["id"] == fake.requests(idempotency_key="expire-1")[0].request_id

    with pytest.raises(stripe.InvalidRequestError) as raised:
        await client.v1.checkout.sessions.expire_async(session.id)
    assert raised.value.http_status == 400
    assert "can be expired" in str(raised.value.user_message)


async def test_a_paid_session_cannot_be_expired(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    session = await create_session(client)
    await fake.pay(session.id)
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.checkout.sessions.expire_async(session.id)


async def test_time_expires_open_sessions(
    fake: FakeStripe, client: stripe.StripeClient, receiver: WebhookReceiver
) -> None:
    session = await create_session(client, expires_at=int(time.time()) + 31 * 60)
    assert await fake.advance_clock(30 * 60) == []

    (event,) = await fake.advance_clock(2 * 60)

    assert event["type"] == "checkout.session.expired"
    assert event["request"] == {"id": None, "idempotency_key": None}
    (delivered,) = await receiver.wait_for(1)
    assert delivered.event.id == event["id"]
    assert (await client.v1.checkout.sessions.retrieve_async(session.id)).status == "expired"
    with pytest.raises(StripeError, match="no longer pay"):
        await fake.pay(session.id)
