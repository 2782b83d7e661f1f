"""Holds and bookings: the decisions of the reservation transactions.

The SQL lives in the repository; here is what is checked, in which order, and
what each outcome means. Nothing here talks to anything but Postgres.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from opentelemetry import trace

from holdfast.platform.errors import DomainError, ErrorKind, failed_precondition, not_found
from holdfast.platform.pagination import Cursor
from services.booking import rules
from services.booking.domain import (
    CheckoutStatus,
    Hold,
    HoldFilter,
    HoldLine,
    HoldRequest,
    HoldStatus,
    Refund,
    RefundCause,
    RefundMode,
    RefundStatus,
    Slot,
    SlotPreview,
    in_time_order,
)
from services.booking.idempotency import IdempotentCall
from services.booking.metrics import BookingMetrics
from services.booking.repository import BookingRepository, Transaction

Response = TypeVar("Response")

SWEEPER_ACTOR = "system:sweeper"
# ConfirmHold's refusals that mean "this payment cannot become the booking".
UNBOOKABLE = ("HOLD_EXPIRED_NO_CAPACITY", "ALREADY_CONFIRMED", "BOOKING_CLOSED")
LATE_PAYMENT_REFUND_REASON = "paid after the hold lapsed and its capacity was gone"
tracer = trace.get_tracer(__name__)


def sold_out(slots: Sequence[Slot], quantity: int) -> DomainError:
    short = [str(s.id) for s in slots if s.free < quantity]
    return failed_precondition(
        "SOLD_OUT",
        f"not enough capacity for {quantity} on {len(short)} slot(s)",
        {"slot_ids": ",".join(short), "quantity": str(quantity)},
    )


def slot_closed(slots: Sequence[Slot]) -> DomainError:
    closed = [str(s.id) for s in slots if s.closed]
    return failed_precondition(
        "SLOT_CLOSED", "a requested slot is closed", {"slot_ids": ",".join(closed)}
    )


def _hold_outcome(error: DomainError) -> str:
    if error.reason in ("SOLD_OUT", "LOCK_TIMEOUT"):
        return error.reason.lower()
    return "unavailable" if error.kind is ErrorKind.UNAVAILABLE else "rejected"


class Reservations:
    def __init__(
        self, repository: BookingRepository, metrics: BookingMetrics | None = None
    ) -> None:
        self._repo = repository
        self._metrics = metrics or BookingMetrics()

    # --- creating a hold -----------------------------------------------------

    async def create_hold(
        self,
        tenant_id: str,
        request: HoldRequest,
        call: IdempotentCall[Hold, Response],
        actor: str,
    ) -> Response:
        """Takes capacity on every requested slot, or on none; returns the
        response to the new hold (the first one again when `call`'s request
        id was used before)."""
        span = trace.get_current_span()
        span.set_attributes(
            {
                "holdfast.resource_id": str(request.resource_id),
                "holdfast.quantity": request.quantity,
                "holdfast.slot_count": len(request.slot_ids),
            }
        )
        outcome = "error"  # unless we learn better: an unexpected exception
        try:
            response, outcome = await self._create_hold(tenant_id, request, call, actor)
        except DomainError as error:
            outcome = _hold_outcome(error)
            raise
        finally:
            self._metrics.holds.labels(outcome).inc()
            span.set_attribute("holdfast.outcome", outcome)
        return response

    async def _create_hold(
        self,
        tenant_id: str,
        request: HoldRequest,
        call: IdempotentCall[Hold, Response],
        actor: str,
    ) -> tuple[Response, str]:
        previews = await self._repo.preview_slots(tenant_id, request.slot_ids, request.quantity)
        self._check_slots_exist(request, previews)
        # A slot that is full with nothing to reclaim answers at once, without
        # queueing for its row lock: this is what keeps a hot slot fast.
        if self._clearly_unavailable(previews, request.quantity):
            # The first request of this id may be what sold the slot out.
            replayed = await call.seen(self._repo, tenant_id)
            if replayed is not None:
                return replayed, "replayed"
            slots = [p.slot for p in previews]
            raise (
                slot_closed(slots)
                if any(s.closed for s in slots)
                else sold_out(slots, request.quantity)
            )

        async with self._repo.transaction(tenant_id, actor) as tx:
            replayed = await call.claim(tx)
            if replayed is not None:
                return replayed, "replayed"
            slots, now = await self._lock_slots(tx, request.slot_ids)
            slots = await self._ensure_capacity(tx, slots, request.quantity)
            prices = {p.slot.id: p for p in previews}
            hold = Hold(
                id=uuid.uuid4(),
                resource_id=request.resource_id,
                status=HoldStatus.HELD,
                quantity=request.quantity,
                customer_ref=request.customer_ref,
                currency=previews[0].currency,
                total_minor=request.quantity * sum(p.unit_minor for p in previews),
                expires_at=now + request.ttl,
                payment_ref="",
                status_reason="",
                created_at=now,
                updated_at=now,
                lines=in_time_order(
                    HoldLine(s.id, s.starts_at, s.ends_at, prices[s.id].unit_minor) for s in slots
                ),
            )
            trace.get_current_span().set_attribute("holdfast.hold_id", str(hold.id))
            response, stored = call.respond(hold)
            await tx.insert_hold(hold, call.key, stored)
        return response, "placed"

    @staticmethod
    def _check_slots_exist(request: HoldRequest, previews: Sequence[SlotPreview]) -> None:
        found = {p.slot.id for p in previews}
        missing = [str(slot_id) for slot_id in request.slot_ids if slot_id not in found]
        if missing:
            raise not_found("slot", missing[0])
        if any(p.slot.resource_id != request.resource_id for p in previews):
            raise DomainError(
                ErrorKind.INVALID_ARGUMENT,
                "SLOT_OF_OTHER_RESOURCE",
                "every slot must belong to resource_id",
                {"resource_id": str(request.resource_id)},
            )

    @staticmethod
    def _clearly_unavailable(previews: Sequence[SlotPreview], quantity: int) -> bool:
        return any(
            p.slot.closed or (p.slot.free < quantity and not p.has_expired_holds) for p in previews
        )

    @staticmethod
    async def _ensure_capacity(tx: Transaction, slots: list[Slot], quantity: int) -> list[Slot]:
        """Checks locked slots can take `quantity`, reclaiming lapsed holds first
        if they cannot; returns the slots as they now stand."""
        if any(s.closed for s in slots):
            raise slot_closed(slots)
        if all(s.free >= quantity for s in slots):
            return slots
        if await tx.reclaim_expired_holds([s.id for s in slots]):
            slots, _ = await tx.lock_slots([s.id for s in slots])
        if any(s.free < quantity for s in slots):
            raise sold_out(slots, quantity)
        return slots

    # --- reading -------------------------------------------------------------

    async def get_hold(self, tenant_id: str, hold_id: uuid.UUID, what: str = "hold") -> Hold:
        hold = await self._repo.get_hold(tenant_id, hold_id)
        if hold is None:
            raise not_found(what, str(hold_id))
        return hold

    async def list_holds(
        self, tenant_id: str, filters: HoldFilter, after: Cursor | None, limit: int
    ) -> list[Hold]:
        return await self._repo.list_holds(tenant_id, filters, after, limit)

    # --- state changes -------------------------------------------------------

    async def release_hold(
        self, tenant_id: str, hold_id: uuid.UUID, reason: str, actor: str
    ) -> Hold:
        async with self._repo.transaction(tenant_id, actor) as tx:
            hold = await self._lock_hold(tx, hold_id, "hold")
            if hold.status in (HoldStatus.RELEASED, HoldStatus.EXPIRED):
                return hold  # releasing again changes nothing
            if hold.status is not HoldStatus.HELD:
                raise failed_precondition(
                    "HOLD_NOT_RELEASABLE",
                    f"a {hold.status.value} hold cannot be released",
                    {"status": hold.status.value},
                )
            await self._lock_slots(tx, hold.slot_ids)
            return await tx.transition_hold(
                hold,
                rules.transition(hold.status, HoldStatus.RELEASED),
                reason=reason or "released by caller",
            )

    async def confirm_hold(
        self, tenant_id: str, hold_id: uuid.UUID, payment_ref: str, actor: str
    ) -> Hold:
        """HELD -> CONFIRMED, as a compare-and-set on the locked hold (see
        `_confirm_locked`)."""
        async with self._repo.transaction(tenant_id, actor) as tx:
            hold = await self._lock_hold(tx, hold_id, "hold")
            confirmed = await self._confirm_locked(tx, hold, payment_ref)
        if confirmed is not hold:
            self._metrics.bookings.labels("confirmed").inc()
        return confirmed

    async def apply_payment(
        self,
        tenant_id: str,
        hold_id: uuid.UUID,
        payment_ref: str,
        actor: str,
        refund_retry_after: float,
    ) -> tuple[Hold, Refund | None]:
        """A payment that succeeded at Stripe becomes the booking, or, when it
        cannot, its refund is decided and recorded (PENDING) in the same
        transaction, under the hold's lock: no other path can confirm the
        hold with it from then on. Returns the hold and the payment's refund
        (None when it is the booking); the caller asks Stripe for the refund.
        The hold's open checkout is closed with it: the reconciler has nothing
        left to learn about it."""
        async with self._repo.transaction(tenant_id, actor) as tx:
            hold = await self._lock_hold(tx, hold_id, "hold")
            try:
                confirmed = await self._confirm_locked(tx, hold, payment_ref)
            except DomainError as error:
                if error.reason == "PAYMENT_REFUNDED":
                    refund = await tx.refund_of(payment_ref)
                    assert refund is not None
                    if refund.hold_id != hold.id:
                        raise not_found("hold", str(hold_id)) from None
                    return hold, refund
                if error.reason not in UNBOOKABLE:
                    raise
                if hold.payment_ref == payment_ref:
                    return hold, None  # this very payment paid the (since closed) booking
                refund = await tx.insert_refund(
                    hold,
                    payment_ref,
                    RefundCause.LATE_PAYMENT,
                    LATE_PAYMENT_REFUND_REASON,
                    retry_after_seconds=refund_retry_after,
                )
                if refund is None:  # another hold's payment (the primary key says so)
                    raise not_found("hold", str(hold_id)) from None
                await tx.close_checkouts(hold.id, CheckoutStatus.COMPLETE)
                return hold, refund
        if confirmed is not hold:
            self._metrics.bookings.labels("confirmed").inc()
        return confirmed, None

    async def _confirm_locked(self, tx: Transaction, hold: Hold, payment_ref: str) -> Hold:
        """HELD -> CONFIRMED on a hold this transaction has locked.

        A payment that was refunded (or whose refund is in flight) never
        confirms a hold: PAYMENT_REFUNDED, checked under the hold's lock, which
        every refund decision also holds. A hold that lapsed (swept or not) is
        still confirmed when its capacity can be had: a lapsed but unswept
        hold still holds it; a swept or released one takes it again if free.
        Otherwise the caller is told to refund with HOLD_EXPIRED_NO_CAPACITY.
        Returns `hold` itself when this payment had already confirmed it.
        """
        refund = await tx.refund_of(payment_ref)
        if refund is not None:
            raise failed_precondition(
                "PAYMENT_REFUNDED",
                "this payment was refunded (or its refund is under way); it cannot confirm a hold",
                {"refund_status": refund.status.value},
            )
        if hold.status is HoldStatus.CONFIRMED:
            if hold.payment_ref == payment_ref:
                return hold  # the same payment confirmed twice: one booking
            raise failed_precondition(
                "ALREADY_CONFIRMED",
                "the hold was confirmed with another payment",
                {"payment_ref": hold.payment_ref},
            )
        if hold.status in (HoldStatus.CANCELLED, HoldStatus.REFUNDED):
            raise failed_precondition(
                "BOOKING_CLOSED",
                f"the booking is {hold.status.value}",
                {"status": hold.status.value},
            )
        slots, now = await self._lock_slots(tx, hold.slot_ids)
        if hold.status is HoldStatus.HELD:
            late = hold.expires_at <= now
            return await tx.transition_hold(
                hold,
                rules.transition(hold.status, HoldStatus.CONFIRMED),
                reason="paid after the hold lapsed" if late else "",
                payment_ref=payment_ref,
            )
        # RELEASED or EXPIRED: the payment came late; take the capacity again.
        try:
            await self._ensure_capacity(tx, slots, hold.quantity)
        except DomainError as error:
            raise failed_precondition(
                "HOLD_EXPIRED_NO_CAPACITY",
                "the hold lapsed and its capacity is gone; refund the payment",
                {"status": hold.status.value, "cause": error.reason},
            ) from None
        return await tx.transition_hold(
            hold,
            rules.transition(hold.status, HoldStatus.CONFIRMED),
            reason=f"paid after the hold was {hold.status.value.lower()}; capacity retaken",
            payment_ref=payment_ref,
        )

    async def cancel_booking(
        self,
        tenant_id: str,
        booking_id: uuid.UUID,
        reason: str,
        refund: RefundMode,
        refunds_possible: bool,
        actor: str,
        refund_retry_after: float,
    ) -> tuple[Hold, Refund | None]:
        """CONFIRMED -> CANCELLED, its capacity given back, and with
        `RefundMode.FULL` the refund of its payment recorded (PENDING) in the
        same transaction; the caller asks Stripe for it. What was decided
        about the money is in the audit row. `refunds_possible` is False when
        payments are not configured: nothing was paid through Stripe then.

        Cancelling a cancelled or refunded booking returns it as it is, with
        its payment's refund (which the caller finishes if still pending)."""
        async with self._repo.transaction(tenant_id, actor) as tx:
            hold = await self._lock_hold(tx, booking_id, "booking")
            if hold.status in (HoldStatus.CANCELLED, HoldStatus.REFUNDED):
                existing = await tx.refund_of(hold.payment_ref) if hold.payment_ref else None
                return hold, existing if existing and existing.hold_id == hold.id else None
            if hold.status is not HoldStatus.CONFIRMED:
                raise failed_precondition(
                    "BOOKING_NOT_CANCELLABLE",
                    f"a {hold.status.value} booking cannot be cancelled"
                    + ("; release the hold instead" if hold.status is HoldStatus.HELD else ""),
                    {"status": hold.status.value},
                )
            paid = refunds_possible and bool(hold.payment_ref)
            refunding = refund is RefundMode.FULL and paid
            decision: dict[str, Any] = {"refund": "full" if refunding else "none"}
            if refund is RefundMode.NONE:
                decision["refund_waived_by"] = actor
            elif not paid:
                decision["refund_note"] = "payments are not configured: nothing to refund"
            await self._lock_slots(tx, hold.slot_ids)
            cancelled = await tx.transition_hold(
                hold,
                rules.transition(hold.status, HoldStatus.CANCELLED),
                reason=reason or "cancelled by caller",
                details=decision,
            )
            recorded = None
            if refunding:
                recorded = await tx.insert_refund(
                    cancelled,
                    hold.payment_ref,
                    RefundCause.CANCELLATION,
                    "booking cancelled",
                    retry_after_seconds=refund_retry_after,
                )
                if recorded is None:
                    # The payment already has a refund (of another hold): not
                    # this booking's to give back twice.
                    raise failed_precondition(
                        "PAYMENT_ALREADY_REFUNDED",
                        "the booking's payment already has a refund; cancel without a refund",
                        {"payment_ref": hold.payment_ref},
                    )
        self._metrics.bookings.labels("cancelled").inc()
        return cancelled, recorded

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
                hold = await self._to_refunded(tx, hold, f"{hold.status_reason}; refunded in full")
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
                refunded = await self._to_refunded(tx, hold, why)
            else:  # pragma: no cover - a hold with a payment_ref was confirmed
                return hold
        self._metrics.bookings.labels("refunded").inc()
        return refunded

    async def _to_refunded(self, tx: Transaction, cancelled: Hold, reason: str) -> Hold:
        """CANCELLED -> REFUNDED: the money went back too (no capacity moves)."""
        return await tx.transition_hold(
            cancelled, rules.transition(cancelled.status, HoldStatus.REFUNDED), reason=reason
        )

    async def expire_due_holds(self, batch_size: int) -> int:
        expired = await self._repo.expire_due_holds(batch_size, SWEEPER_ACTOR)
        self._metrics.holds_expired.inc(expired)
        return expired

    async def forget_old_request_ids(self, older_than_hours: int, batch_size: int) -> int:
        return await self._repo.prune_request_records(older_than_hours, batch_size)

    async def _lock_slots(
        self, tx: Transaction, slot_ids: Sequence[uuid.UUID]
    ) -> tuple[list[Slot], datetime]:
        """Waits for the slots' row locks: measured, since a hot slot's wait
        is what a slow hold is made of."""
        started = time.perf_counter()
        with tracer.start_as_current_span("booking.lock_slots") as span:
            try:
                return await tx.lock_slots(slot_ids)
            finally:
                waited = time.perf_counter() - started
                self._metrics.lock_wait.observe(waited)
                span.set_attribute("holdfast.lock_wait_ms", round(waited * 1e3, 3))

    @staticmethod
    async def _lock_hold(tx: Transaction, hold_id: uuid.UUID, what: str) -> Hold:
        hold = await tx.lock_hold(hold_id)
        if hold is None:
            raise not_found(what, str(hold_id))
        return hold
