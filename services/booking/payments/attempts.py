"""A hold's next payment attempt (a Stripe Checkout Session), as decided
before Stripe is asked."""

from __future__ import annotations

from datetime import datetime, timedelta

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
