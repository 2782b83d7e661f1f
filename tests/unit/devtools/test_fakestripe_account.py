"""The fake's objects and operations, without HTTP: shapes, checks, events."""

from __future__ import annotations

import time
from typing import Any

import pytest

from devtools.fakestripe.account import Account, RequestContext
from devtools.fakestripe.checkout_params import session_params
from devtools.fakestripe.clock import Clock
from devtools.fakestripe.delivery import RetryPolicy, WebhookEndpoint
from devtools.fakestripe.errors import StripeError
from devtools.fakestripe.events import CHECKOUT_EVENTS
from devtools.fakestripe.objects import JsonObject, build, shape
from devtools.fakestripe.store import Store

KINDS = ["checkout.session", "payment_intent", "charge", "refund", "event"]


@pytest.mark.parametrize("kind", KINDS)
def test_built_objects_have_exactly_stripes_fields(kind: str) -> None:
    assert set(build(kind)) == set(shape(kind))


def test_a_field_stripe_does_not_have_is_a_bug() -> None:
    with pytest.raises(KeyError):
        build("refund", amount_refunded=1)


def form(**overrides: Any) -> dict[str, Any]:
    """Session parameters as the parser hands them over: strings."""
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {
                    "currency": "EUR",
                    "unit_amount": "1250",
                    "product_data": {"name": "Room"},
                },
                "quantity": "3",
            }
        ],
        "metadata": {"hold_id": "h-1", "blank": ""},
    }
    params.update(overrides)
    return params


def test_session_parameters_become_typed_values() -> None:
    now = int(time.time())
    p = session_params(form(), now)
    assert (p.amount_total, p.currency) == (3750, "eur")
    assert p.expires_at == now + 24 * 3600
    # An empty metadata value means "no such key", as at Stripe.
    assert p.metadata == {"hold_id": "h-1"}


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [(30 * 60 - 1, False), (30 * 60, True), (24 * 3600, True), (24 * 3600 + 1, False)],
)
def test_expires_at_bounds_are_stripes(offset: int, accepted: bool) -> None:
    now = 1_800_000_000
    params = form(expires_at=str(now + offset))
    if accepted:
        assert session_params(params, now).expires_at == now + offset
    else:
        with pytest.raises(StripeError) as raised:
            session_params(params, now)
        assert (raised.value.param, raised.value.replayable) == ("expires_at", False)


@pytest.mark.parametrize(
    ("item", "param"),
    [
        (
            {"quantity": "1", "price_data": {"currency": "eur", "unit_amount": "1"}},
            "[product_data]",
        ),
        ({"quantity": "x", "price_data": {}}, "[quantity]"),
        ({"quantity": "0", "price_data": {}}, "[quantity]"),
        ({"quantity": "1", "price_data": {"colour": "red"}}, "[price_data][colour]"),
        ({"quantity": "1", "price": "price_123"}, "[price]"),
    ],
)
def test_line_item_errors_name_the_nested_parameter(item: dict[str, Any], param: str) -> None:
    with pytest.raises(StripeError) as raised:
        session_params(form(line_items=[item]), 0)
    assert str(raised.value.param).startswith("line_items[0]")
    assert str(raised.value.param).endswith(param)


def test_backoff_doubles_up_to_its_cap() -> None:
    policy = RetryPolicy(backoff_seconds=0.5, max_backoff_seconds=3)
    assert [policy.backoff(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1, 2, 3, 3]


class Recorder:
    def __init__(self) -> None:
        self.sent: list[JsonObject] = []

    def __call__(self, event: JsonObject) -> None:
        self.sent.append(event)


def account(url: str | None = "http://receiver.test/hook") -> tuple[Account, Recorder]:
    sent = Recorder()
    endpoint = WebhookEndpoint(url=url, secret="whsec_x", enabled_events=CHECKOUT_EVENTS)
    return Account(Store(), Clock(), endpoint, sent, api_version="2026-10-28.endive"), sent


def test_paying_creates_stripes_events_and_sends_only_the_enabled_ones() -> None:
    acct, sent = account()
    session = acct.create_session(form(), RequestContext("req_1", "key_1", "http://fake"))

    completed = acct.pay(session["id"])

    assert [e["type"] for e in acct.store.events.values()] == [
        "charge.succeeded",
        "payment_intent.succeeded",
        "checkout.session.completed",
    ]
    assert [e["id"] for e in sent.sent] == [completed["id"]]
    assert completed["pending_webhooks"] == 1
    # A snapshot: later changes to the session do not reach the event.
    session["metadata"]["later"] = "x"
    assert "later" not in completed["data"]["object"]["metadata"]


def test_without_an_endpoint_events_are_kept_not_sent() -> None:
    acct, sent = account(url=None)
    session = acct.create_session(form(), RequestContext(base_url="http://fake"))
    event = acct.pay(session["id"])
    assert sent.sent == []
    assert event["pending_webhooks"] == 0


def test_partial_refunds_add_up_to_a_refunded_charge() -> None:
    acct, _ = account()
    session = acct.create_session(form(), RequestContext(base_url="http://fake"))
    intent_id = acct.pay(session["id"])["data"]["object"]["payment_intent"]
    ctx = RequestContext("req_r", "refund-key", "http://fake")

    acct.create_refund({"payment_intent": intent_id, "amount": "750"}, ctx)
    acct.create_refund({"payment_intent": intent_id}, ctx)

    charge = acct.store.charges[acct.store.payment_intents[intent_id]["latest_charge"]]
    assert (charge["amount_refunded"], charge["refunded"]) == (3750, True)
    assert [r["amount"] for r in charge["refunds"]["data"]] == [3000, 750]
    last = list(acct.store.events.values())[-1]
    assert last["type"] == "charge.refunded"
    assert last["data"]["previous_attributes"] == {"amount_refunded": 750, "refunded": False}
    assert last["request"] == {"id": "req_r", "idempotency_key": "refund-key"}
