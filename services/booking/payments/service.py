"""Payments for holds: Stripe Checkout, applying payments, cancellations'
refunds, and what became of a session at Stripe.

Stripe is only ever called outside a database transaction: a transaction
decides and records (the attempt and its parameters, a refund), commits, then
Stripe is called with an idempotency key that names the attempt (or the
payment), and its answer is recorded in a second short statement. A crash in
between is repaired by calling Stripe again with the same key and parameters,
which returns the same object: that is what the reconciler does with
attempts left CREATING and refunds left PENDING.

What Stripe would refuse is refused before it is asked (holdfast.platform.
stripe_limits); an attempt Stripe refuses anyway ends FAILED with Stripe's
reason and is never sent again.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

import stripe

from holdfast.platform.errors import (
    DomainError,
    ErrorKind,
    FieldViolation,
    failed_precondition,
    invalid_argument,
    not_found,
    unavailable,
)
from holdfast.platform.stripe_limits import total_problem
from services.booking.config import BookingSettings
from services.booking.domain import (
    Checkout,
    CheckoutStatus,
    DueCheckout,
    Hold,
    HoldStatus,
    Refund,
    RefundMode,
    RefundStatus,
)
from services.booking.metrics import BookingMetrics
from services.booking.payments.attempts import line_items, new_attempt
from services.booking.payments.refunds import Refunds
from services.booking.payments.stripe_calls import (
    payment_intent_id,
    payment_state,
    refused_by_stripe,
    stripe_errors,
)
from services.booking.repository import BookingRepository, PaymentRepository
from services.booking.reservations import Reservations

log = logging.getLogger(__name__)

RECONCILER_ACTOR = "system:reconciler"


class Payments:
    def __init__(
        self,
        repository: BookingRepository,
        payments: PaymentRepository,
        reservations: Reservations,
        client: stripe.StripeClient | None,
        settings: BookingSettings,
        metrics: BookingMetrics | None = None,
    ) -> None:
        self._repo = repository
        self._payments = payments
        self._reservations = reservations
        self._client = client
        self._settings = settings
        self._metrics = metrics or BookingMetrics()
        self.refunds = Refunds(reservations, client, self._metrics)

    @property
    def enabled(self) -> bool:
        """Whether payments are configured (a Stripe API key)."""
        return self._client is not None

    def _stripe(self) -> stripe.StripeClient:
        if self._client is None:
            raise failed_precondition(
                "PAYMENTS_DISABLED", "payments are not configured (HOLDFAST_STRIPE_API_KEY)"
            )
        return self._client

    # --- checkout ------------------------------------------------------------

    async def start_checkout(
        self, tenant_id: str, hold_id: uuid.UUID, success_url: str, cancel_url: str, actor: str
    ) -> Checkout:
        """The hold's open checkout, or a new attempt at Stripe.

        An attempt recorded as open is checked with Stripe first: if its
        session expired (or Stripe does not know it), or its payment was
        declined or refunded, it is recorded so and the next attempt starts.
        An attempt Stripe refuses ends FAILED with Stripe's reason: this
        call's own is answered PAYMENT_PROVIDER_REFUSED; an earlier call's
        (left CREATING) makes way for a new attempt with this call's URLs.
        """
        self._stripe()
        for _ in range(3):
            hold, checkout, started_now = await self._current_or_new_attempt(
                tenant_id, hold_id, success_url, cancel_url, actor
            )
            if checkout.status is CheckoutStatus.CREATING:
                session, refusal = await self._create_or_fail(hold, checkout)
                if session is not None:
                    return await self._payments.record_session(
                        checkout, session.id, str(session.url)
                    )
                if started_now:
                    raise failed_precondition(
                        "PAYMENT_PROVIDER_REFUSED",
                        f"Stripe refused the checkout: {refusal}",
                        {"attempt": str(checkout.attempt)},
                    )
                continue  # an earlier call's attempt was refused: this call's is next
            assert checkout.session_id is not None
            session = await self.retrieve_session(checkout.session_id)
            if session is not None and session.status == "open":
                return checkout
            if session is not None and session.status == "complete":
                if not await self._spent(checkout, session):
                    return checkout
                continue
            await self._payments.set_session_status(checkout.session_id, CheckoutStatus.EXPIRED)
        raise unavailable("CHECKOUT_BUSY", "the checkout changed meanwhile; retry", 0.5)

    async def _spent(self, checkout: Checkout, session: Any) -> bool:
        """Whether a completed session can pay for nothing more: its payment
        was refunded or declined (recorded on the attempt if so)."""
        assert checkout.session_id is not None
        state, why = await payment_state(self._stripe, session)
        if state == "declined":
            await self._fail(checkout, f"payment declined: {why}", "declined")
            return True
        payment = payment_intent_id(session)
        if payment and await self._payments.find_refund(checkout.tenant_id, payment):
            await self._payments.set_session_status(checkout.session_id, CheckoutStatus.COMPLETE)
            return True
        return False

    async def _current_or_new_attempt(
        self, tenant_id: str, hold_id: uuid.UUID, success_url: str, cancel_url: str, actor: str
    ) -> tuple[Hold, Checkout, bool]:
        """The hold's unresolved attempt, or a new one (True) with this call's
        parameters, unless Stripe would refuse its total."""
        async with self._repo.transaction(tenant_id, actor) as tx:
            hold = await tx.lock_hold(hold_id)
            if hold is None:
                raise not_found("hold", str(hold_id))
            if hold.status is not HoldStatus.HELD:
                raise failed_precondition(
                    "HOLD_NOT_PAYABLE",
                    f"a {hold.status.value} hold cannot be paid",
                    {"status": hold.status.value},
                )
            now = await tx.now()
            if hold.expires_at <= now:
                raise failed_precondition("HOLD_EXPIRED", "the hold has lapsed")
            latest = await tx.latest_checkout(hold_id)
            if latest is not None and latest.unresolved:
                return hold, latest, False
            problem = total_problem(hold.total_minor, hold.currency)
            if problem is not None:
                raise invalid_argument([FieldViolation("hold_id", problem)])
            checkout = new_attempt(
                self._settings, tenant_id, hold, latest, now, success_url, cancel_url
            )
            lead = timedelta(seconds=self._settings.reconciler_lead_seconds)
            await tx.insert_checkout(checkout, min(checkout.expires_at, hold.expires_at) - lead)
            return hold, checkout, True

    async def retrieve_session(self, session_id: str) -> Any:
        """The session as Stripe has it now; None when Stripe does not know it
        (another account, or a local fake Stripe that restarted): nothing can
        ever be paid through it."""
        try:
            async with stripe_errors():
                return await self._stripe().v1.checkout.sessions.retrieve_async(session_id)
        except DomainError as error:
            if error.reason == "PAYMENT_PROVIDER_REFUSED" and "No such" in error.message:
                return None
            raise

    async def _create_or_fail(self, hold: Hold, checkout: Checkout) -> tuple[Any, str]:
        """The attempt's session, created (or, for a retried attempt, found
        again); or, when Stripe refused it, None and Stripe's reason, and the
        attempt is FAILED: the same parameters would be refused again."""
        try:
            return await self._create_session(hold, checkout), ""
        except DomainError as error:
            if not refused_by_stripe(error):
                raise
            await self._fail(checkout, error.message, "refused")
            return None, error.message

    async def _create_session(self, hold: Hold, checkout: Checkout) -> Any:
        # The request's trace and correlation id ride along, so the webhook's
        # processing links back to the request that started the payment.
        tracing = {
            "traceparent": checkout.traceparent or "",
            "correlation_id": checkout.correlation_id,
        }
        metadata = {
            "hold_id": str(hold.id),
            "tenant_id": checkout.tenant_id,
            "attempt": str(checkout.attempt),
            **tracing,
        }
        params: dict[str, Any] = {
            "mode": "payment",
            "client_reference_id": str(hold.id),
            "line_items": line_items(hold, checkout.currency.lower()),
            "metadata": metadata,
            # So a charge (and its refund events) lead back to the hold too.
            "payment_intent_data": {
                "metadata": {"hold_id": str(hold.id), "tenant_id": checkout.tenant_id, **tracing}
            },
            "expires_at": int(checkout.expires_at.timestamp()),
            "success_url": checkout.success_url,
            "cancel_url": checkout.cancel_url,
        }
        async with stripe_errors():
            return await self._stripe().v1.checkout.sessions.create_async(
                params,  # type: ignore[arg-type]
                {"idempotency_key": checkout.idempotency_key},
            )

    async def _fail(self, checkout: Checkout, reason: str, why: str) -> None:
        await self._payments.fail_attempt(checkout, reason)
        self._metrics.checkouts_failed.labels(why).inc()
        log.warning(
            "payment attempt failed: %s",
            reason,
            extra={"hold_id": str(checkout.hold_id), "attempt": checkout.attempt},
        )

    async def expire_session(self, session_id: str, idempotency_key: str) -> None:
        """Expires an open session (its hold lapsed or was released). A session
        that is no longer open is looked at again: a declined payment ends
        its attempt FAILED at once; anything else (a payment, say) is left to
        the webhook and the reconciler, which looks at it at its next pass."""
        try:
            async with stripe_errors():
                await self._stripe().v1.checkout.sessions.expire_async(
                    session_id, options={"idempotency_key": idempotency_key}
                )
        except DomainError as error:
            if error.reason != "PAYMENT_PROVIDER_REFUSED":
                raise
            log.info("checkout %s was no longer open: %s", session_id, error.message)
            await self._no_longer_open(session_id)
            return
        await self._payments.set_session_status(session_id, CheckoutStatus.EXPIRED)

    async def _no_longer_open(self, session_id: str) -> None:
        due = await self._payments.checkout_by_session(session_id)
        if due is None or not due.checkout.unresolved:
            return
        session = await self.retrieve_session(session_id)
        if session is not None and session.status == "complete":
            state, why = await payment_state(self._stripe, session)
            if state == "declined":
                await self._declined(due, why)
                return
        await self._payments.check_soon(session_id)

    # --- what became of a session --------------------------------------------

    async def settle(self, due: DueCheckout) -> None:
        """Asks Stripe what became of an unresolved attempt and acts on it:
        the reconciler's look at one attempt."""
        checkout = due.checkout
        tenant = checkout.tenant_id
        if checkout.session_id is None:
            # The attempt's create never got its answer recorded: the same
            # key and parameters give the same session back.
            hold = await self._reservations.get_hold(tenant, checkout.hold_id)
            session, _ = await self._create_or_fail(hold, checkout)
            if session is None:
                return
            checkout = await self._payments.record_session(checkout, session.id, str(session.url))
        assert checkout.session_id is not None
        session = await self.retrieve_session(checkout.session_id)
        if session is None:
            await self._payments.set_session_status(checkout.session_id, CheckoutStatus.EXPIRED)
        elif session.status == "complete":
            state, why = await payment_state(self._stripe, session)
            if state == "paid":
                await self.apply_payment(tenant, checkout.hold_id, payment_intent_id(session))
                await self._payments.set_session_status(
                    checkout.session_id, CheckoutStatus.COMPLETE
                )
            elif state == "declined":
                await self._declined(due, why)
            # else the payment is still pending: looked at again later.
        elif session.status == "expired":
            await self._payments.set_session_status(checkout.session_id, CheckoutStatus.EXPIRED)
            if due.hold_status is HoldStatus.HELD:
                await self._reservations.release_hold(
                    tenant, checkout.hold_id, "checkout expired", RECONCILER_ACTOR
                )
        elif session.status == "open" and (
            due.hold_status is not HoldStatus.HELD
            or due.hold_expires_at <= datetime.now(due.hold_expires_at.tzinfo)
        ):
            await self.expire_session(checkout.session_id, f"reconcile:{checkout.session_id}")

    async def _declined(self, due: DueCheckout, why: str) -> None:
        """The customer's payment was declined: the attempt ends FAILED (first,
        so releasing the hold does not ask Stripe to expire the session), and
        a hold still held is released."""
        await self._fail(due.checkout, f"payment declined: {why}", "declined")
        if due.hold_status is HoldStatus.HELD:
            await self._reservations.release_hold(
                due.checkout.tenant_id,
                due.checkout.hold_id,
                "checkout payment declined",
                RECONCILER_ACTOR,
            )

    # --- applying payments and refunding ---------------------------------------

    async def apply_payment(
        self, tenant_id: str, hold_id: uuid.UUID, payment_ref: str, actor: str = RECONCILER_ACTOR
    ) -> tuple[Hold, Refund | None]:
        """A succeeded payment becomes the booking, or is refunded if it cannot
        (invariant 3: no payment kept without a booking; invariant 9: a
        refund is final). Returns the hold and the payment's refund, None
        when it is the booking."""
        hold, refund = await self._reservations.apply_payment(
            tenant_id, hold_id, payment_ref, actor, self._settings.refund_retry_delay_seconds
        )
        if refund is None:
            return hold, None
        hold, refund = await self.refunds.make(refund, actor)
        if refund.status is RefundStatus.FAILED:
            raise failed_precondition(
                "REFUND_REFUSED",
                f"the payment cannot become the booking and Stripe refused its refund:"
                f" {refund.failure_reason}",
                {"payment_ref": payment_ref},
            )
        return hold, refund

    async def cancel_booking(
        self, tenant_id: str, booking_id: uuid.UUID, reason: str, mode: RefundMode, actor: str
    ) -> tuple[Hold, Refund | None]:
        """Cancels a booking and, unless told not to, refunds its payment in
        full at Stripe. The cancellation stands even when Stripe is out of
        reach: the refund stays PENDING, and the reconciler (or cancelling
        again) makes it."""
        hold, refund = await self._reservations.cancel_booking(
            tenant_id,
            booking_id,
            reason,
            mode,
            self._client is not None,
            actor,
            self._settings.refund_retry_delay_seconds,
        )
        if refund is None or refund.status is not RefundStatus.PENDING or self._client is None:
            return hold, refund
        try:
            return await self.refunds.make(refund, actor)
        except DomainError as error:
            if error.kind is not ErrorKind.UNAVAILABLE:
                raise
            log.warning("refund of cancelled booking %s left pending: %s", booking_id, error)
            return hold, refund
