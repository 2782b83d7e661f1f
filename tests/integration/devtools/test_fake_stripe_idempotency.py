"""The fake Stripe, driven by the real `stripe` client: idempotency keys
replay or refuse as Stripe's do, and errors (unknown ids, wrong or missing API
keys) come in Stripe's format."""

from __future__ import annotations

import time

import httpx
import pytest
import stripe

from devtools.fakestripe import FakeStripe
from tests.support.fake_stripe import SECOND_KEY, create_session
from tests.support.stripe import STRIPE_CLIENT_WARNING, session_params, stripe_client

pytestmark = pytest.mark.filterwarnings(STRIPE_CLIENT_WARNING)


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
