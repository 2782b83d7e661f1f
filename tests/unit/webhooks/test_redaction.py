"""What of a Stripe event the inbox keeps once it is final: an allow-list, run
on Stripe's own example objects (every field a real one carries) with a
customer filled in wherever Stripe puts one."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devtools.fakestripe.events import build_event, payload
from devtools.fakestripe.objects import shape
from services.webhooks.redaction import redact
from tests.support.stripe_events import API_VERSION, personal_data_in, with_customer

HOLDFAST_METADATA = {
    "hold_id": "0b0e2f55-3f4b-4f7e-9d0e-6f1b1f3e8c11",
    "tenant_id": "acme",
    "attempt": "2",
    "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "correlation_id": "c0ffee",
}
# What each type keeps besides id, object, created, livemode and metadata.
KEPT = {
    "checkout.session": {
        "amount_subtotal",
        "amount_total",
        "client_reference_id",
        "currency",
        "expires_at",
        "mode",
        "payment_intent",
        "payment_status",
        "status",
    },
    "payment_intent": {
        "amount",
        "amount_received",
        "canceled_at",
        "cancellation_reason",
        "currency",
        "latest_charge",
        "status",
    },
    "charge": {
        "amount",
        "amount_captured",
        "amount_refunded",
        "captured",
        "currency",
        "failure_code",
        "paid",
        "payment_intent",
        "refunded",
        "status",
    },
    "refund": {"amount", "charge", "currency", "payment_intent", "reason", "status"},
}
EVENT_TYPES = {
    "checkout.session": "checkout.session.completed",
    "payment_intent": "payment_intent.succeeded",
    "charge": "charge.refunded",
    "refund": "refund.created",
}


def stored(obj: dict[str, Any], event_type: str, **extra: Any) -> tuple[dict[str, Any], str]:
    """An event about `obj` as Stripe posts it, and its redacted form."""
    sent = build_event(event_type, obj, created=1_790_000_000, api_version=API_VERSION, **extra)
    return sent, redact(payload(sent).decode())


@pytest.mark.parametrize("kind", sorted(KEPT))
def test_only_the_allowed_fields_of_each_object_are_kept(kind: str) -> None:
    obj = with_customer(shape(kind))
    obj["metadata"] = {**HOLDFAST_METADATA, "customer_name": "Maria Baptista"}
    sent, kept = stored(obj, EVENT_TYPES[kind], request_id="req_1", idempotency_key="key-1")

    assert personal_data_in(payload(sent).decode())  # there was some to remove
    assert personal_data_in(kept) == []
    event = json.loads(kept)
    assert {k: event[k] for k in ("id", "type", "created", "livemode")} == {
        k: sent[k] for k in ("id", "type", "created", "livemode")
    }
    assert event["request"] == {"id": "req_1", "idempotency_key": "key-1"}
    kept_obj = event["data"]["object"]
    expected = {"id", "object", "created", "livemode", "metadata"} | KEPT[kind]
    assert set(kept_obj) == expected & set(obj)
    assert {k: v for k, v in kept_obj.items() if k != "metadata"} == {
        k: obj[k] for k in kept_obj if k != "metadata"
    }
    # holdfast's own metadata; a merchant's other keys (possibly personal) go.
    assert kept_obj["metadata"] == HOLDFAST_METADATA


def test_a_field_stripe_adds_tomorrow_is_dropped_as_is_an_unknown_object() -> None:
    session = with_customer(shape("checkout.session"))
    session["customer_nickname"] = "Mia"
    session["payment_intent"] = {**shape("payment_intent"), "receipt_email": "m@example.pt"}
    _, kept = stored(session, "checkout.session.completed")
    kept_session = json.loads(kept)["data"]["object"]
    assert "customer_nickname" not in kept_session
    # An expanded object keeps its own type's allowed fields.
    assert kept_session["payment_intent"]["id"] == session["payment_intent"]["id"]
    assert "receipt_email" not in kept_session["payment_intent"]

    customer = {"id": "cus_1", "object": "customer", "created": 1, "email": "m@example.pt"}
    _, kept = stored(customer, "customer.created")
    assert json.loads(kept)["data"]["object"] == {"id": "cus_1", "object": "customer", "created": 1}


def test_previous_attributes_keep_only_allowed_fields() -> None:
    session = with_customer(shape("checkout.session"))
    before = {"status": "open", "customer_details": {"email": "old@example.pt"}}
    _, kept = stored(session, "checkout.session.completed", previous_attributes=before)
    assert json.loads(kept)["data"]["previous_attributes"] == {"status": "open"}


def test_redacting_twice_changes_nothing_and_garbage_keeps_nothing() -> None:
    _, kept = stored(with_customer(shape("charge")), "charge.refunded")
    assert redact(kept) == kept
    assert redact("not json") == "{}"
    assert redact("[1, 2]") == "{}"
