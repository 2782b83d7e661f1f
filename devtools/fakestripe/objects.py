"""Stripe objects built from Stripe's own examples.

`objects.json` is Stripe's example of each object (the `resources` fixtures of
stripe/openapi, unchanged), so every object the fake returns carries every
field a real one does. `build` starts from that shape, resets the example's
placeholder values to what a fresh test-mode object holds, then fills in the
fields given; naming a field Stripe's object does not have is a bug, and fails.
"""

from __future__ import annotations

import copy
import json
import secrets
import string
from importlib import resources
from typing import Any

JsonObject = dict[str, Any]

_ALPHABET = string.ascii_letters + string.digits


def _load_shapes() -> dict[str, JsonObject]:
    text = resources.files(__package__).joinpath("objects.json").read_text(encoding="utf-8")
    shapes: dict[str, JsonObject] = json.loads(text)
    return shapes


_SHAPES = _load_shapes()

_NULL_ADDRESS: JsonObject = {
    "city": None,
    "country": None,
    "line1": None,
    "line2": None,
    "postal_code": None,
    "state": None,
}

# What the example's placeholders are on an object the fake creates. Every
# field whose example value would be wrong for a fresh test-mode object is
# listed; fields the example already gets right (`livemode`, `object`...) are not.
_FRESH: dict[str, JsonObject] = {
    "checkout.session": {
        "adaptive_pricing": {"enabled": False},
        "after_expiration": None,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "collected_information": None,
        "consent": None,
        "consent_collection": None,
        "currency_conversion": None,
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer_creation": "if_required",
        "customer_details": None,
        "discounts": [],
        "invoice_creation": {
            "enabled": False,
            "invoice_data": {
                "account_tax_ids": None,
                "custom_fields": None,
                "description": None,
                "footer": None,
                "issuer": None,
                "metadata": {},
                "rendering_options": None,
            },
        },
        "managed_payments": {"enabled": False},
        "payment_intent": None,
        "payment_method_collection": "if_required",
        "payment_method_configuration_details": None,
        "permissions": None,
        "saved_payment_method_options": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted",
        "wallet_options": None,
    },
    "payment_intent": {
        "amount_details": {"tip": {}},
        "automatic_payment_methods": None,
        "canceled_at": None,
        "capture_method": "automatic_async",
        "last_payment_error": None,
        "managed_payments": {"enabled": False},
        "next_action": None,
        "payment_method_configuration_details": None,
        "processing": None,
        "shipping": None,
        "transfer_data": None,
    },
    "charge": {
        "amount_refunded": 0,
        "billing_details": {
            "address": dict(_NULL_ADDRESS),
            "email": None,
            "name": None,
            "phone": None,
            "tax_id": None,
        },
        "description": None,
        "outcome": {
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "normal",
            "risk_score": 12,
            "seller_message": "Payment complete.",
            "type": "authorized",
        },
        "receipt_url": None,
        "shipping": None,
        "source": None,
        "transfer_data": None,
    },
    "refund": {},
    "event": {"api_version": None, "pending_webhooks": 0},
}


def build(kind: str, **fields: Any) -> JsonObject:
    """A `kind` object ("checkout.session", "charge"...) with `fields` filled in."""
    obj = copy.deepcopy(_SHAPES[kind])
    extra = set(fields) - set(obj)
    if extra:
        raise KeyError(f"{kind} has no field(s) {sorted(extra)}")
    obj.update(copy.deepcopy(_FRESH[kind]))
    obj.update(fields)
    return obj


def shape(kind: str) -> JsonObject:
    """Stripe's example object itself (a copy), for tests that compare shapes."""
    return copy.deepcopy(_SHAPES[kind])


def card_details(amount: int) -> JsonObject:
    """`payment_method_details` of a test card payment (Visa 4242)."""
    details = copy.deepcopy(_SHAPES["charge"]["payment_method_details"])
    card = details["card"]
    card["amount_authorized"] = amount
    card["overcapture"] = {"maximum_amount_capturable": amount, "status": "unavailable"}
    card["network_transaction_id"] = random_string(15, string.digits)
    card["wallet"] = None
    return JsonObject(details)


def sepa_debit_details() -> JsonObject:
    """`payment_method_details` of a SEPA Direct Debit: a payment that settles
    days later, hence Checkout's `async_payment_*` events."""
    return {
        "sepa_debit": {
            "bank_code": "37040044",
            "branch_code": None,
            "country": "DE",
            "fingerprint": random_string(16),
            "last4": "3000",
            "mandate": new_id("mandate"),
        },
        "type": "sepa_debit",
    }


def random_string(length: int, alphabet: str = _ALPHABET) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def new_id(prefix: str, length: int = 24) -> str:
    """An id like Stripe's: `pi_3Pgafy...`; checkout sessions' are longer."""
    return f"{prefix}_{random_string(length)}"


def new_session_id() -> str:
    return f"cs_test_{random_string(58)}"


def new_request_id() -> str:
    return f"req_{random_string(14)}"
