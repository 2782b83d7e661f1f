"""What of a Stripe event is kept once it is final: an allow-list.

Stripe's objects carry customers' personal data: a checkout session's
`customer_details` and `collected_information` (name, email, phone, address),
a charge's `billing_details`, `receipt_email` and `shipping`, and every API
version adds fields. The inbox keeps the body as received only while the
event may still be applied (PENDING, FAILED); once it is final (APPLIED,
IGNORED or DEAD) only the fields listed here are kept, and the admin API
never shows more, whatever the state. Anything not listed, a field Stripe
adds tomorrow included, is dropped.

Kept is what applying the event reads (services.webhooks.processor: a DEAD
event may be replayed, and must still apply) and what an audit of a payment
needs: ids, amounts, currency, statuses, times, and holdfast's own metadata.
"""

from __future__ import annotations

import json
from typing import Any

# Stripe's event around the object.
_EVENT = frozenset(
    {"id", "object", "type", "api_version", "created", "livemode", "pending_webhooks"}
)
_REQUEST = frozenset({"id", "idempotency_key"})
# The metadata holdfast sets on sessions and payments (services.booking.payments.service).
_METADATA = frozenset({"hold_id", "tenant_id", "attempt", "traceparent", "correlation_id"})
# Per object type; every type keeps these.
_ANY_OBJECT = frozenset({"id", "object", "created", "livemode", "metadata"})
_OBJECTS = {
    "checkout.session": frozenset(
        {
            "amount_subtotal",
            "amount_total",
            "client_reference_id",
            "currency",
            "expires_at",
            "mode",
            "payment_intent",
            "payment_status",
            "status",
        }
    ),
    "payment_intent": frozenset(
        {
            "amount",
            "amount_received",
            "canceled_at",
            "cancellation_reason",
            "currency",
            "latest_charge",
            "status",
        }
    ),
    "charge": frozenset(
        {
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
        }
    ),
    "refund": frozenset({"amount", "charge", "currency", "payment_intent", "reason", "status"}),
}


def redact(payload: str) -> str:
    """The stored form of an event body: only the allowed fields, as compact
    JSON. Redacting a redacted payload changes nothing."""
    try:
        event = json.loads(payload)
    except ValueError:
        return "{}"  # never stored (the receiver parses first), and nothing to keep
    if not isinstance(event, dict):
        return "{}"
    kept = _pick(event, _EVENT)
    request = event.get("request")
    if isinstance(request, dict):
        kept["request"] = _pick(request, _REQUEST)
    data = event.get("data")
    if isinstance(data, dict) and isinstance(data.get("object"), dict):
        obj = data["object"]
        kept_data: dict[str, Any] = {"object": redact_object(obj)}
        previous = data.get("previous_attributes")
        if isinstance(previous, dict):
            # What changed, for the same object type: only the allowed fields.
            kept_data["previous_attributes"] = redact_object(previous, obj.get("object"))
        kept["data"] = kept_data
    return json.dumps(kept, separators=(",", ":"))


def redact_object(obj: dict[str, Any], object_type: object = None) -> dict[str, Any]:
    """One Stripe object's allowed fields; an expanded object inside it is
    redacted by its own type, holdfast's metadata keeps only its own keys."""
    kind = object_type if object_type is not None else obj.get("object")
    allowed = _ANY_OBJECT | _OBJECTS.get(kind if isinstance(kind, str) else "", frozenset())
    kept: dict[str, Any] = {}
    for name in allowed & obj.keys():
        value = obj[name]
        if name == "metadata":
            if isinstance(value, dict):
                kept[name] = _pick(value, _METADATA)
        elif isinstance(value, dict):
            if isinstance(value.get("object"), str):
                kept[name] = redact_object(value)
        elif not isinstance(value, list):
            kept[name] = value
    return dict(sorted(kept.items()))


def _pick(source: dict[str, Any], names: frozenset[str]) -> dict[str, Any]:
    """The scalar values of `names` in `source`."""
    return {
        name: source[name]
        for name in sorted(names & source.keys())
        if not isinstance(source[name], dict | list)
    }
