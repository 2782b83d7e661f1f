"""Payments for holds: Stripe Checkout, late-payment refunds, reconciliation.

Stripe is only ever called outside a database transaction: a transaction
decides and records (the attempt, its parameters), commits, then Stripe is
called with an idempotency key that names the attempt, and its answer is
recorded in a second short statement. A crash in between is repaired by
calling Stripe again with the same key and parameters, which returns the
same object: that is what the reconciler does with attempts left CREATING.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import stripe

from holdfast.platform.context import current_correlation_id
from holdfast.platform.errors import (
    DomainError,
    failed_precondition,
    not_found,
    unavailable,
)
from holdfast.platform.telemetry import current_traceparent
from services.booking.config import BookingSettings
from services.booking.domain import Checkout, CheckoutStatus, Hold, HoldStatus
from services.booking.repository import BookingRepository, PaymentRepository
from services.booking.reservations import Reservations

log = logging.getLogger(__name__)

RECONCILER_ACTOR = "system:reconciler"
# ConfirmHold's refusals that mean "this payment cannot become the booking".
_UNBOOKABLE = ("HOLD_EXPIRED_NO_CAPACITY", "ALREADY_CONFIRMED", "BOOKING_CLOSED")
# Stripe's longest checkout session.
_MAX_SESSION_LIFETIME = timedelta(hours=24)


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


def _payment_intent_id(session: Any) -> str:
    intent = session.payment_intent
    return str(intent if isinstance(intent, str) or intent is None else intent.id or "")


class Payments:
    def __init__(
        self,
        repository: BookingRepository,
        payments: PaymentRepository,
        reservations: Reservations,
        client: stripe.StripeClient | None,
        settings: BookingSettings,
    ) -> None:
        self._repo = repository
        self._payments = payments
        self._reservations = reservations
        self._client = client
        self._settings = settings

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
        session expired (or Stripe does not know it), it is recorded as
        expired and the next attempt starts.
        """
        self._stripe()
        for _ in range(2):
            hold, checkout = await self._current_or_new_attempt(
                tenant_id, hold_id, success_url, cancel_url, actor
            )
            if checkout.status is CheckoutStatus.CREATING:
                session = await self._create_session(hold, checkout)
                return await self._payments.record_session(checkout, session.id, str(session.url))
            assert checkout.session_id is not None
            session = await self._retrieve_session(checkout.session_id)
            if session is not None and session.status in ("open", "complete"):
                return checkout
            await self._payments.set_session_status(checkout.session_id, CheckoutStatus.EXPIRED)
        raise unavailable("CHECKOUT_BUSY", "the checkout changed meanwhile; retry", 0.5)

    async def _current_or_new_attempt(
        self, tenant_id: str, hold_id: uuid.UUID, success_url: str, cancel_url: str, actor: str
    ) -> tuple[Hold, Checkout]:
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
                return hold, latest
            checkout = self._new_attempt(tenant_id, hold, latest, now, success_url, cancel_url)
            await tx.insert_checkout(checkout)
            return hold, checkout

    async def _retrieve_session(self, session_id: str) -> Any:
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

    def _new_attempt(
        self,
        tenant_id: str,
        hold: Hold,
        latest: Checkout | None,
        now: datetime,
        success_url: str,
        cancel_url: str,
    ) -> Checkout:
        s = self._settings
        # Stripe keeps a session open at least 30 minutes; a shorter hold
        # expires its session itself when it lapses (through the outbox).
        lifetime = max(hold.expires_at - now, timedelta(seconds=s.checkout_min_lifetime_seconds))
        return Checkout(
            hold_id=hold.id,
            attempt=latest.attempt + 1 if latest else 1,
            tenant_id=tenant_id,
            status=CheckoutStatus.CREATING,
            amount_minor=hold.total_minor,
            currency=hold.currency,
            expires_at=now + min(lifetime, _MAX_SESSION_LIFETIME),
            success_url=(success_url or s.checkout_success_url).replace("{HOLD_ID}", str(hold.id)),
            cancel_url=(cancel_url or s.checkout_cancel_url).replace("{HOLD_ID}", str(hold.id)),
            traceparent=current_traceparent(),
            correlation_id=current_correlation_id(),
        )

    async def _create_session(self, hold: Hold, checkout: Checkout) -> Any:
        """Creates (or, for a retried attempt, finds again) the attempt's session."""
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
            "line_items": [
                {
                    "price_data": {
                        "currency": checkout.currency.lower(),
                        "unit_amount": line.unit_minor,
                        "product_data": {
                            "name": f"{line.starts_at:%Y-%m-%d %H:%M}"
                            f" - {line.ends_at:%Y-%m-%d %H:%M} UTC"
                        },
                    },
                    "quantity": hold.quantity,
                }
                for line in hold.lines
            ],
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

    async def expire_session(self, session_id: str, idempotency_key: str) -> None:
        """Expires an open session (its hold lapsed or was released). A session
        that is no longer open is left alone: if it was paid, the webhook or
        the reconciler applies the late-payment rule."""
        try:
            async with stripe_errors():
                await self._stripe().v1.checkout.sessions.expire_async(
                    session_id, options={"idempotency_key": idempotency_key}
                )
        except DomainError as error:
            if error.reason != "PAYMENT_PROVIDER_REFUSED":
                raise
            log.info("checkout %s was no longer open: %s", session_id, error.message)
            return
        await self._payments.set_session_status(session_id, CheckoutStatus.EXPIRED)

    # --- refunds -------------------------------------------------------------

    async def refund_late_payment(
        self, tenant_id: str, hold_id: uuid.UUID, payment_ref: str, reason: str, actor: str
    ) -> tuple[Hold, str]:
        """Refunds a payment that could not become a booking, once per payment."""
        hold = await self._repo.get_hold(tenant_id, hold_id)
        if hold is None:
            raise not_found("hold", str(hold_id))
        if hold.payment_ref == payment_ref:
            raise failed_precondition(
                "PAYMENT_IS_A_BOOKING",
                "this payment paid for the booking; cancel or refund the booking instead",
            )
        existing = await self._payments.find_refund(payment_ref)
        if existing is not None:
            if existing["hold_id"] != hold_id or existing["tenant_id"] != tenant_id:
                raise not_found("hold", str(hold_id))
            return hold, str(existing["refund_id"])
        async with stripe_errors():
            refund = await self._stripe().v1.refunds.create_async(
                {
                    "payment_intent": payment_ref,
                    "metadata": {"hold_id": str(hold_id), "tenant_id": tenant_id},
                },
                {"idempotency_key": f"refund:{payment_ref}"},
            )
        why = reason or "paid after the hold lapsed and its capacity was gone"
        async with self._repo.transaction(tenant_id, actor) as tx:
            locked = await tx.lock_hold(hold_id)
            assert locked is not None
            await tx.record_refund(locked, payment_ref, refund.id, refund.amount, why)
        log.info("refunded a late payment", extra={"hold_id": str(hold_id), "refund": refund.id})
        refreshed = await self._repo.get_hold(tenant_id, hold_id)
        assert refreshed is not None
        return refreshed, str(refund.id)

    # --- the reconciler ------------------------------------------------------

    async def reconcile_once(self) -> int:
        """Asks Stripe about every attempt near or past lapsing; returns how
        many were looked at. One that fails is left for the next pass."""
        if self._client is None:
            return 0
        s = self._settings
        due = await self._payments.unresolved_checkouts(
            s.reconciler_lead_seconds, s.reconciler_batch_size
        )
        for checkout, hold_status, hold_expires_at in due:
            try:
                await self._reconcile(checkout, hold_status, hold_expires_at)
            except DomainError as error:
                log.warning("reconciling checkout of hold %s failed: %s", checkout.hold_id, error)
        return len(due)

    async def _reconcile(
        self, checkout: Checkout, hold_status: HoldStatus, hold_expires_at: datetime
    ) -> None:
        tenant = checkout.tenant_id
        if checkout.session_id is None:
            # The attempt's create never got its answer recorded: the same
            # key and parameters give the same session back.
            hold = await self._repo.get_hold(tenant, checkout.hold_id)
            assert hold is not None
            session = await self._create_session(hold, checkout)
            checkout = await self._payments.record_session(checkout, session.id, str(session.url))
        assert checkout.session_id is not None
        session = await self._retrieve_session(checkout.session_id)
        if session is None:
            await self._payments.set_session_status(checkout.session_id, CheckoutStatus.EXPIRED)
        elif session.status == "complete" and session.payment_status == "paid":
            await self.apply_payment(tenant, checkout.hold_id, _payment_intent_id(session))
            await self._payments.set_session_status(checkout.session_id, CheckoutStatus.COMPLETE)
        elif session.status == "expired":
            await self._payments.set_session_status(checkout.session_id, CheckoutStatus.EXPIRED)
            if hold_status is HoldStatus.HELD:
                await self._reservations.release_hold(
                    tenant, checkout.hold_id, "checkout expired", RECONCILER_ACTOR
                )
        elif session.status == "open" and (
            hold_status is not HoldStatus.HELD
            or hold_expires_at <= datetime.now(hold_expires_at.tzinfo)
        ):
            await self.expire_session(checkout.session_id, f"reconcile:{checkout.session_id}")

    async def apply_payment(
        self, tenant_id: str, hold_id: uuid.UUID, payment_ref: str, actor: str = RECONCILER_ACTOR
    ) -> tuple[Hold, str | None]:
        """A succeeded payment becomes the booking, or is refunded if it cannot
        (invariant 3: no payment kept without a booking). Returns the hold and
        the refund id, None when confirmed."""
        try:
            return await self._reservations.confirm_hold(
                tenant_id, hold_id, payment_ref, actor
            ), None
        except DomainError as error:
            if error.reason not in _UNBOOKABLE:
                raise
        hold = await self._repo.get_hold(tenant_id, hold_id)
        assert hold is not None
        if hold.payment_ref == payment_ref:
            return hold, None  # this very payment paid the (since closed) booking
        return await self.refund_late_payment(tenant_id, hold_id, payment_ref, "", actor)
