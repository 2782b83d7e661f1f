"""A hold's next payment attempt (a Stripe Checkout Session), as decided
before Stripe is asked."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from holdfast.platform.context import current_correlation_id
from holdfast.platform.telemetry import current_traceparent
from services.booking.config import BookingSettings
from services.booking.domain import Checkout, CheckoutStatus, Hold

# Stripe's longest checkout session.
_MAX_SESSION_LIFETIME = timedelta(hours=24)


def _urls(s: BookingSettings, hold: Hold, success_url: str, cancel_url: str) -> tuple[str, str]:
    return (
        (success_url or s.checkout_success_url).replace("{HOLD_ID}", str(hold.id)),
        (cancel_url or s.checkout_cancel_url).replace("{HOLD_ID}", str(hold.id)),
    )


def new_attempt(
    s: BookingSettings,
    tenant_id: str,
    hold: Hold,
    latest: Checkout | None,
    now: datetime,
    success_url: str,
    cancel_url: str,
) -> Checkout:
    """The next payment attempt for `hold`: everything Stripe will be sent,
    fixed now, so that a retried create is the same request."""
    # Stripe keeps a session open at least 30 minutes; a shorter hold
    # expires its session itself when it lapses (through the outbox).
    lifetime = max(hold.expires_at - now, timedelta(seconds=s.checkout_min_lifetime_seconds))
    success, cancel = _urls(s, hold, success_url, cancel_url)
    return Checkout(
        hold_id=hold.id,
        attempt=latest.attempt + 1 if latest else 1,
        tenant_id=tenant_id,
        status=CheckoutStatus.CREATING,
        amount_minor=hold.total_minor,
        currency=hold.currency,
        expires_at=now + min(lifetime, _MAX_SESSION_LIFETIME),
        success_url=success,
        cancel_url=cancel,
        traceparent=current_traceparent(),
        correlation_id=current_correlation_id(),
    )


def line_items(hold: Hold, currency: str) -> list[dict[str, Any]]:
    """What the customer is shown buying: a slotted hold's lines (its
    quantity of each), or a windowed hold's window on its unit, once, at the
    hold's total. Either way they add up to the hold's total."""
    if hold.window is not None:
        window = hold.window.window
        return [
            _line(
                f"{hold.window.unit_name}: {window.start:%Y-%m-%d %H:%M}"
                f" - {window.end:%Y-%m-%d %H:%M} UTC",
                hold.total_minor,
                1,
                currency,
            )
        ]
    return [
        _line(
            f"{line.starts_at:%Y-%m-%d %H:%M} - {line.ends_at:%Y-%m-%d %H:%M} UTC",
            line.unit_minor,
            hold.quantity,
            currency,
        )
        for line in hold.lines
    ]


def _line(name: str, unit_amount: int, quantity: int, currency: str) -> dict[str, Any]:
    return {
        "price_data": {
            "currency": currency,
            "unit_amount": unit_amount,
            "product_data": {"name": name},
        },
        "quantity": quantity,
    }
