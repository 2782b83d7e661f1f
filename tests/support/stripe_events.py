"""Stripe events as Stripe sends them, for tests of the webhook service: built
from Stripe's own example objects (via the fake Stripe's shapes) and signed
with Stripe's scheme, with any secret and timestamp a test needs."""

from __future__ import annotations

import time
from typing import Any

from holdfast.fakestripe.events import build_event, payload
from holdfast.fakestripe.objects import build, new_id
from holdfast.fakestripe.signing import signature_header

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
