"""The fake Stripe, driven by the real `stripe` client and checked by a
webhook receiver that verifies signatures as the real library does: if these
pass, code written against Stripe works against the fake unchanged."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import stripe
from stripe.params import RefundCreateParams

from devtools.fakestripe import (
    CHECKOUT_EVENTS,
    FakeStripe,
    FakeStripeConfig,
    RetryPolicy,
    StartedRequest,
    StripeError,
)
from devtools.fakestripe.objects import shape
from tests.support.availability import eventually
from tests.support.stripe import (
    STRIPE_CLIENT_WARNING,
    WebhookReceiver,
    session_params,
    stripe_client,
)

pytestmark = pytest.mark.filterwarnings(STRIPE_CLIENT_WARNING)

SECOND_KEY = "sk_test_second_account"
# Short retries, so the tests can watch a whole schedule.
FAST_RETRIES = RetryPolicy(max_attempts=3, backoff_seconds=0.05, max_backoff_seconds=0.2)


@pytest.fixture
async def fake() -> AsyncIterator[FakeStripe]:
    config = FakeStripeConfig(api_keys=("sk_test_holdfast_fake", SECOND_KEY), retry=FAST_RETRIES)
    async with FakeStripe(config) as running:
        yield running


@pytest.fixture
async def client(fake: FakeStripe) -> AsyncIterator[stripe.StripeClient]:
    async with stripe_client(fake) as c:
        yield c


@pytest.fixture
async def receiver(fake: FakeStripe) -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver(fake.webhook_secret) as r:
        fake.configure_webhook(r.url)
        yield r


async def create_session(
    client: stripe.StripeClient, **overrides: object
) -> stripe.checkout.Session:
    return await client.v1.checkout.sessions.create_async(session_params(**overrides))


# --- checkout sessions ------------------------------------------------------


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


# --- idempotency ------------------------------------------------------------


async def test_the_same_key_and_parameters_replay_the_very_same_response(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    params = session_params()
    first = await client.v1.checkout.sessions.create_async(
        params, options={"idempotency_key": "create-1"}
    )
    second = await client.v1.checkout.sessions.create_async(
        params, options={"idempotency_key": "create-1"}
    )

    assert second.id == first.id
    assert first.last_response is not None
    assert second.last_response is not None
    assert second.last_response.body == first.last_response.body
    assert second.last_response.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.last_response.headers
    assert len(fake.store.sessions) == 1
    seen = fake.requests(path="/v1/checkout/sessions", idempotency_key="create-1")
    assert [r.replayed for r in seen] == [False, True]


async def test_the_same_key_with_other_parameters_is_an_idempotency_error(
    client: stripe.StripeClient,
) -> None:
    await client.v1.checkout.sessions.create_async(
        session_params(), options={"idempotency_key": "create-2"}
    )
    with pytest.raises(stripe.IdempotencyError) as raised:
        await client.v1.checkout.sessions.create_async(
            session_params(client_reference_id="hold-2"), options={"idempotency_key": "create-2"}
        )
    assert raised.value.http_status == 400
    assert raised.value.error is not None
    assert raised.value.error.type == "idempotency_error"


async def test_the_same_key_on_another_endpoint_is_an_idempotency_error(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    session = await create_session(client)
    await client.v1.checkout.sessions.expire_async(session.id, options={"idempotency_key": "k-3"})
    with pytest.raises(stripe.IdempotencyError):
        await client.v1.checkout.sessions.create_async(
            session_params(), options={"idempotency_key": "k-3"}
        )


async def test_idempotency_keys_belong_to_their_api_key(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    first = await client.v1.checkout.sessions.create_async(
        session_params(), options={"idempotency_key": "shared"}
    )
    async with stripe_client(fake, SECOND_KEY) as other:
        second = await other.v1.checkout.sessions.create_async(
            session_params(client_reference_id="other"), options={"idempotency_key": "shared"}
        )
    assert second.id != first.id


async def test_a_request_refused_for_its_parameters_leaves_its_key_free(
    client: stripe.StripeClient,
) -> None:
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.checkout.sessions.create_async(
            session_params(expires_at=int(time.time())), options={"idempotency_key": "fix-me"}
        )
    session = await client.v1.checkout.sessions.create_async(
        session_params(), options={"idempotency_key": "fix-me"}
    )
    assert session.status == "open"


# --- errors -----------------------------------------------------------------


async def test_an_unknown_id_is_a_404_resource_missing(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await client.v1.checkout.sessions.retrieve_async("cs_test_nothing")
    assert (raised.value.http_status, raised.value.code) == (404, "resource_missing")
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await client.v1.payment_intents.retrieve_async("pi_nothing")
    assert (raised.value.http_status, raised.value.code) == (404, "resource_missing")


async def test_a_wrong_api_key_is_a_401(fake: FakeStripe) -> None:
    async with stripe_client(fake, "sk_test_not_ours") as wrong:
        with pytest.raises(stripe.AuthenticationError) as raised:
            await wrong.v1.checkout.sessions.create_async(session_params())
    assert raised.value.http_status == 401
    assert fake.store.sessions == {}


async def test_no_api_key_is_a_401_in_stripes_format(fake: FakeStripe) -> None:
    async with httpx.AsyncClient(base_url=fake.base_url) as http:
        response = await http.post("/v1/checkout/sessions", data={"mode": "payment"})
        basic = await http.get("/v1/payment_intents/pi_x", auth=(fake.api_key, ""))
        unknown = await http.get("/v1/customers", auth=(fake.api_key, ""))
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "did not provide an API key" in response.json()["error"]["message"]
    # HTTP Basic with the key as user name (curl -u sk_test_...:) is accepted too.
    assert basic.status_code == 404
    assert unknown.status_code == 404
    assert "Unrecognized request URL" in unknown.json()["error"]["message"]


# --- paying and webhooks ----------------------------------------------------


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


# --- refunds ----------------------------------------------------------------


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
