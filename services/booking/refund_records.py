"""Refunds as the bookings record them: made or refused at Stripe, or
refunded there by someone else; a cancelled booking whose payment went back
is REFUNDED. Stripe itself is asked by `services.booking.payments.refunds`."""

from __future__ import annotations

import uuid

from holdfast.platform.errors import failed_precondition, not_found
from services.booking import rules
from services.booking.domain import (
    CheckoutStatus,
    Hold,
    HoldStatus,
    Refund,
    RefundCause,
    RefundStatus,
)
from services.booking.repository import Transaction
from services.booking.reservation_base import ReservationBase

LATE_PAYMENT_REFUND_REASON = "paid after the hold lapsed and its capacity was gone"


class RefundRecords(ReservationBase):
    async def record_refund_made(
        self, refund: Refund, refund_id: str | None, amount_minor: int, actor: str
    ) -> Hold:
        """Stripe made `refund`: it SUCCEEDED; a cancelled booking it paid is
        now REFUNDED (its capacity was given back when it was cancelled)."""
        async with self._repo.transaction(refund.tenant_id, actor) as tx:
            hold = await self._lock_hold(tx, refund.hold_id, "hold")
            late = refund.cause is RefundCause.LATE_PAYMENT
            await tx.complete_refund(
                hold, refund, refund_id, amount_minor, LATE_PAYMENT_REFUND_REASON if late else None
            )
            cancelled = hold.status is HoldStatus.CANCELLED
            if cancelled and hold.payment_ref == refund.payment_ref:
                hold = await self._to_refunded(tx, hold)
                self._metrics.bookings.labels("refunded").inc()
        return hold

    async def record_refund_refused(self, refund: Refund, message: str, actor: str) -> Hold:
        async with self._repo.transaction(refund.tenant_id, actor) as tx:
            hold = await self._lock_hold(tx, refund.hold_id, "hold")
            await tx.fail_refund(hold, refund, message)
        return await self.get_hold(refund.tenant_id, refund.hold_id)

    async def mark_refunded(
        self,
        tenant_id: str,
        booking_id: uuid.UUID,
        payment_ref: str,
        refund_id: str,
        reason: str,
        actor: str,
    ) -> Hold:
        """The payment was refunded in full at Stripe. The refund is recorded
        (so the payment can never confirm a hold), and a booking it paid is
        REFUNDED: CONFIRMED gives its capacity back, CANCELLED had already."""
        async with self._repo.transaction(tenant_id, actor) as tx:
            hold = await self._lock_hold(tx, booking_id, "booking")
            why = reason or "payment refunded"
            existing = await tx.refund_of(payment_ref)
            if existing is not None and existing.hold_id != hold.id:
                raise failed_precondition(
                    "BOOKING_NOT_REFUNDABLE",
                    "the payment belongs to another hold",
                    {"status": hold.status.value},
                )
            if existing is None:
                recorded = await tx.insert_refund(
                    hold, payment_ref, RefundCause.AT_STRIPE, why, refund_id=refund_id or None
                )
                if recorded is None:
                    raise not_found("booking", str(booking_id))  # another tenant's payment
            elif existing.status is not RefundStatus.SUCCEEDED:
                await tx.complete_refund(
                    hold, existing, refund_id or None, existing.amount_minor, None
                )
            if hold.payment_ref != payment_ref or hold.status is HoldStatus.REFUNDED:
                if hold.status is not HoldStatus.HELD:
                    await tx.close_checkouts(hold.id, CheckoutStatus.COMPLETE)
                return hold  # not (or no longer) a booking this payment holds
            if hold.status is HoldStatus.CONFIRMED:
                await self._lock_slots(tx, hold.slot_ids)
                refunded = await tx.transition_hold(
                    hold, rules.transition(hold.status, HoldStatus.REFUNDED), reason=why
                )
            elif hold.status is HoldStatus.CANCELLED:
                # Stripe's word may come before the canceller records the
                # refund it asked for: the cancellation still says why.
                ours = existing is not None and existing.cause is RefundCause.CANCELLATION
                refunded = await self._to_refunded(tx, hold, None if ours else why)
            else:  # pragma: no cover - a hold with a payment_ref was confirmed
                return hold
        self._metrics.bookings.labels("refunded").inc()
        return refunded

    async def _to_refunded(
        self, tx: Transaction, cancelled: Hold, reason: str | None = None
    ) -> Hold:
        """CANCELLED -> REFUNDED: the money went back too (no capacity moves).
        Without a `reason`, the cancellation's refund: its reason stands."""
        return await tx.transition_hold(
            cancelled,
            rules.transition(cancelled.status, HoldStatus.REFUNDED),
            reason=reason or f"{cancelled.status_reason}; refunded in full",
        )
