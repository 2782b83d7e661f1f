"""Calling Stripe: its failures in the domain's error model, and what a
checkout session says about its payment."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import stripe

from holdfast.platform.errors import DomainError, failed_precondition, unavailable

# A PaymentIntent in these states after its session completed was declined.
_DECLINED = ("requires_payment_method", "canceled")


@asynccontextmanager
async def stripe_errors() -> AsyncIterator[None]:
    """Stripe's failures in the domain's error model."""
    try:
        yield
    except stripe.IdempotencyError as error:
        raise failed_precondition("PAYMENT_REQUEST_CONFLICT", str(error.user_message)) from None
    except stripe.InvalidRequestError as error:
        raise failed_precondition(
            "PAYMENT_PROVIDER_REFUSED", str(error.user_message or error)
        ) from None
    except stripe.StripeError:
        # Network failures, Stripe's 5xx and rate limits (after the client's own
        # retries with the same idempotency key): worth retrying later.
        raise unavailable(
            "PAYMENT_PROVIDER_UNAVAILABLE", "Stripe did not answer; retry", 2.0
        ) from None


def refused_by_stripe(error: DomainError) -> bool:
    """Whether Stripe refused the request itself: asking again the same way
    is refused again."""
    return error.reason in ("PAYMENT_PROVIDER_REFUSED", "PAYMENT_REQUEST_CONFLICT")


def payment_intent_id(session: Any) -> str:
    intent = session.payment_intent
    return str(intent if isinstance(intent, str) or intent is None else intent.id or "")


async def payment_state(client: Callable[[], stripe.StripeClient], session: Any) -> tuple[str, str]:
    """How a completed session's payment stands: ("paid", ""), ("pending",
    "") while an asynchronous payment settles, or ("declined", why)."""
    if session.payment_status in ("paid", "no_payment_required"):
        return "paid", ""
    intent_id = payment_intent_id(session)
    if not intent_id:
        return "pending", ""
    async with stripe_errors():
        intent = await client().v1.payment_intents.retrieve_async(intent_id)
    if intent.status == "succeeded":
        return "paid", ""
    if intent.status in _DECLINED:
        error = intent.last_payment_error
        why = (error.message or error.code) if error else None
        return "declined", str(why or intent.status)
    return "pending", ""
