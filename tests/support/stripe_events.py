"""Stripe events as Stripe sends them, for tests of the webhook service: built
from Stripe's own example objects (via the fake Stripe's shapes) and signed
with Stripe's scheme, with any secret and timestamp a test needs."""

from __future__ import annotations

import json
import time
from typing import Any

from devtools.fakestripe.events import build_event, payload
from devtools.fakestripe.objects import build, new_id
from devtools.fakestripe.signing import signature_header

SECRET = "whsec_test_current"
OLD_SECRET = "whsec_test_previous"
API_VERSION = "2025-09-30.clover"


def checkout_session(
    hold_id: str,
    tenant: str,
    *,
    payment_intent: str | None = None,
    payment_status: str = "paid",
    status: str = "complete",
) -> dict[str, Any]:
    return build(
        "checkout.session",
        id=new_id("cs_test"),
        client_reference_id=hold_id,
        metadata={"hold_id": hold_id, "tenant_id": tenant},
        payment_intent=payment_intent or new_id("pi"),
        payment_status=payment_status,
        status=status,
    )


def event(event_type: str, obj: dict[str, Any], created: int | None = None) -> dict[str, Any]:
    return build_event(
        event_type, obj, created=created or int(time.time()), api_version=API_VERSION
    )


def signed(
    body_of: dict[str, Any] | bytes, secret: str = SECRET, timestamp: float | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a delivery of `body_of`, signed like Stripe does."""
    body = body_of if isinstance(body_of, bytes) else payload(body_of)
    return body, {
        "Stripe-Signature": signature_header(body, secret, timestamp),
        "Content-Type": "application/json",
    }


# A customer as Stripe's objects carry one. None of it may be kept once an
# event is final, nor shown by the admin API.
CUSTOMER = {
    "name": "Maria Baptista",
    "email": "maria.baptista@example.pt",
    "phone": "+351912345678",
    "line1": "Rua Augusta 24",
    "line2": "Terceiro esquerdo",
    "city": "Lisboa",
    "postal_code": "1100-053",
}


def _address() -> dict[str, Any]:
    keys = ("line1", "line2", "city", "postal_code")
    return {"country": "PT", "state": None, **{k: CUSTOMER[k] for k in keys}}


def with_customer(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` (a session, payment intent or charge) with the customer filled
    in wherever Stripe puts one, as after a real checkout."""
    person = {"name": CUSTOMER["name"], "email": CUSTOMER["email"], "phone": CUSTOMER["phone"]}
    shipping = {"name": CUSTOMER["name"], "phone": CUSTOMER["phone"], "address": _address()}
    if obj["object"] == "checkout.session":
        obj["customer_details"] = {
            **(obj.get("customer_details") or {}),
            **person,
            "address": _address(),
            "individual_name": CUSTOMER["name"],
        }
        obj["customer_email"] = CUSTOMER["email"]
        obj["collected_information"] = {
            "business_name": None,
            "individual_name": CUSTOMER["name"],
            "shipping_details": {"name": CUSTOMER["name"], "address": _address()},
        }
    elif obj["object"] == "charge":
        obj["billing_details"] = {**person, "address": _address(), "tax_id": None}
        obj["receipt_email"] = CUSTOMER["email"]
        obj["shipping"] = shipping
    elif obj["object"] == "payment_intent":
        obj["receipt_email"] = CUSTOMER["email"]
        obj["shipping"] = shipping
    return obj


def personal_data_in(payload: str) -> list[str]:
    """The customer's details found in a stored payload (none, hopefully)."""
    text = json.dumps(json.loads(payload), ensure_ascii=False) if payload else ""
    return [value for value in CUSTOMER.values() if value in text]
