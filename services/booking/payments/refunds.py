"""Refunds at Stripe: made once per payment, after they were recorded.

A refund is decided and recorded (PENDING) in the transaction that locks the
hold, before Stripe is called; from then on the payment can never confirm a
hold (invariant 9). Stripe is then asked, outside any transaction, with the
payment's idempotency key `refund:{payment_ref}` and always the same
parameters, so asking again (after a crash, a timeout, a second replica) makes
no second refund. Its answer completes the record: SUCCEEDED with Stripe's
refund id, or FAILED with Stripe's reason, which needs an operator.

Whoever decided the refund asks Stripe at once; the reconciler asks for every
refund still PENDING a while later (`refund_retry_delay_seconds`), so a crash
between the decision and Stripe's answer is repaired without anyone calling
again.
"""

from __future__ import annotations

import dataclasses
import logging

import stripe

from holdfast.platform.errors import failed_precondition, unavailable
from services.booking.domain import Hold, Refund, RefundStatus
from services.booking.metrics import BookingMetrics
from services.booking.reservations import Reservations

log = logging.getLogger(__name__)


class Refunds:
    def __init__(
        self,
        reservations: Reservations,
        client: stripe.StripeClient | None,
        metrics: BookingMetrics | None = None,
    ) -> None:
        self._reservations = reservations
        self._client = client
        self._metrics = metrics or BookingMetrics()

    async def make(self, refund: Refund, actor: str) -> tuple[Hold, Refund]:
        """Asks Stripe for a PENDING refund and records its answer; returns
        the hold and the refund as they now stand. A refund that is no longer
        pending is returned as it is. Stripe out of reach is UNAVAILABLE (the
        refund stays PENDING for a later try)."""
        if refund.status is not RefundStatus.PENDING:
            return await self._reservations.get_hold(refund.tenant_id, refund.hold_id), refund
        if self._client is None:
            raise failed_precondition(
                "PAYMENTS_DISABLED", "payments are not configured (HOLDFAST_STRIPE_API_KEY)"
            )
        try:
            made = await self._client.v1.refunds.create_async(
                {
                    "payment_intent": refund.payment_ref,
                    "metadata": {"hold_id": str(refund.hold_id), "tenant_id": refund.tenant_id},
                },
                {"idempotency_key": refund.idempotency_key},
            )
        except stripe.InvalidRequestError as error:
            if error.code == "charge_already_refunded":
                # Refunded already (in Stripe's dashboard, say): the money is back.
                return await self._made(refund, None, refund.amount_minor, actor)
            return await self._refused(refund, str(error.user_message or error), actor)
        except stripe.StripeError:
            # Network failures, Stripe's 5xx and rate limits, and a concurrent
            # request with the same key (after the client's own retries).
            raise unavailable(
                "PAYMENT_PROVIDER_UNAVAILABLE", "Stripe did not answer; the refund will be retried"
            ) from None
        return await self._made(refund, str(made.id), int(made.amount), actor)

    async def _made(
        self, refund: Refund, refund_id: str | None, amount_minor: int, actor: str
    ) -> tuple[Hold, Refund]:
        hold = await self._reservations.record_refund_made(refund, refund_id, amount_minor, actor)
        self._metrics.refunds.labels(refund.cause.value.lower(), "succeeded").inc()
        log.info(
            "refunded a payment",
            extra={"hold_id": str(refund.hold_id), "refund": refund_id, "cause": refund.cause},
        )
        return hold, dataclasses.replace(
            refund,
            status=RefundStatus.SUCCEEDED,
            refund_id=refund_id or refund.refund_id,
            amount_minor=amount_minor,
        )

    async def _refused(self, refund: Refund, message: str, actor: str) -> tuple[Hold, Refund]:
        hold = await self._reservations.record_refund_refused(refund, message, actor)
        self._metrics.refunds.labels(refund.cause.value.lower(), "failed").inc()
        log.error(
            "Stripe refused a refund: an operator must act",
            extra={"hold_id": str(refund.hold_id), "payment_ref": refund.payment_ref},
        )
        return hold, dataclasses.replace(refund, status=RefundStatus.FAILED, failure_reason=message)
