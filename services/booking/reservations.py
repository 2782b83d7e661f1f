"""Holds and bookings: the decisions of the reservation transactions.

The SQL lives in the repository; here is what is checked, in which order, and
what each outcome means. Nothing here talks to anything but Postgres.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, TypeVar

from opentelemetry import trace

from holdfast.platform.errors import DomainError, ErrorKind, failed_precondition, not_found
from holdfast.platform.pagination import Cursor
from services.booking import capacity, rules
from services.booking.domain import (
    CheckoutStatus,
    Hold,
    HoldFilter,
    HoldRequest,
    HoldStatus,
    Refund,
    RefundCause,
    RefundMode,
    SlotPreview,
    WindowHoldRequest,
)
from services.booking.idempotency import IdempotentCall
from services.booking.refund_records import LATE_PAYMENT_REFUND_REASON, RefundRecords
from services.booking.repository import Placement, Transaction
from services.booking.window_holds import WindowHolds

Response = TypeVar("Response")

SWEEPER_ACTOR = "system:sweeper"
# ConfirmHold's refusals that mean "this payment cannot become the booking".
UNBOOKABLE = ("HOLD_EXPIRED_NO_CAPACITY", "ALREADY_CONFIRMED", "BOOKING_CLOSED")


def refund_decision(refund: RefundMode, paid: bool, actor: str) -> dict[str, Any]:
    """What a cancellation decides about the money, as its audit row says it.
    `paid`: the booking was paid through Stripe (payments are configured)."""
    refunding = refund is RefundMode.FULL and paid
    decision: dict[str, Any] = {"refund": "full" if refunding else "none"}
    if refund is RefundMode.NONE:
        decision["refund_waived_by"] = actor
    elif not paid:
        decision["refund_note"] = "payments are not configured: nothing to refund"
    return decision


def _hold_outcome(error: DomainError) -> str:
    if error.reason in ("SOLD_OUT", "LOCK_TIMEOUT"):
        return error.reason.lower()
    return "unavailable" if error.kind is ErrorKind.UNAVAILABLE else "rejected"


class Reservations(WindowHolds, RefundRecords):
    """The reservation transactions: holds made, released, confirmed, paid
    and cancelled (holds on windows are made in `WindowHolds`, the records
    of refunds are in `RefundRecords`)."""

    # --- creating a hold -----------------------------------------------------

    async def create_hold(
        self,
        tenant_id: str,
        request: HoldRequest | WindowHoldRequest,
        call: IdempotentCall[Hold, Response],
        actor: str,
    ) -> Response:
        """Takes capacity on every requested slot, or on none, or puts the
        requested window on one unit; returns the response to the new hold
        (the first one again when `call`'s request id was used before)."""
        span = trace.get_current_span()
        span.set_attribute("holdfast.resource_id", str(request.resource_id))
        if isinstance(request, HoldRequest):
            span.set_attribute("holdfast.quantity", request.quantity)
            span.set_attribute("holdfast.slot_count", len(request.slot_ids))
        elif request.party_size is not None:
            span.set_attribute("holdfast.quantity", request.party_size)
        outcome = "error"  # unless we learn better: an unexpected exception
        try:
            if isinstance(request, WindowHoldRequest):
                response, outcome = await self._create_window_hold(tenant_id, request, call, actor)
            else:
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
        previews, read_at = await self._previews.get(
            (tenant_id, request.slot_ids, request.quantity)
        )
        try:
            capacity.check_slots_exist(request, previews)
        except DomainError:
            await self._refuse_slots_of_windowed(tenant_id, request)
            raise
        assert read_at is not None  # the slots were found
        # A slot that is full with nothing to reclaim answers at once, without
        # queueing for its row lock: this is what keeps a hot slot fast.
        if not capacity.clearly_unavailable(previews, request.quantity):
            # The hold as of the read: its time is the database's at the
            # preview, a moment before its slots are locked.
            hold = capacity.new_hold(request, previews, [p.slot for p in previews], read_at)
            response, stored = call.respond(hold)
            placement = await self._place_hold(tenant_id, actor, hold, call, stored)
            if placement.placed:
                trace.get_current_span().set_attribute("holdfast.hold_id", str(hold.id))
                return response, "placed"
            read = {p.slot.id: p for p in previews}
            locked = [
                SlotPreview(slot, read[slot.id].unit_minor, read[slot.id].currency, lapsed)
                for slot, lapsed in placement.slots
            ]
            if len(locked) != len(previews) or not capacity.clearly_unavailable(
                locked, request.quantity
            ):
                # Lapsed holds to reclaim, or a request id used before.
                return await self._create_hold_in_transaction(
                    tenant_id, request, previews, call, actor
                )
            previews = locked
        # The first request of this id may be what sold the slot out.
        replayed = await call.seen(self._repo, tenant_id)
        if replayed is not None:
            return replayed, "replayed"
        raise capacity.refusal([p.slot for p in previews], request.quantity)

    async def _place_hold(
        self,
        tenant_id: str,
        actor: str,
        hold: Hold,
        call: IdempotentCall[Hold, Response],
        stored: bytes | None,
    ) -> Placement:
        """The hold in one statement, which waits for its slots' locks
        (measured: a hot slot's wait is what a slow hold is made of)."""
        started = time.perf_counter()
        try:
            return await self._repo.place_hold(tenant_id, actor, hold, call.key, stored)
        finally:
            self._metrics.lock_wait.observe(time.perf_counter() - started)

    async def _create_hold_in_transaction(
        self,
        tenant_id: str,
        request: HoldRequest,
        previews: list[SlotPreview],
        call: IdempotentCall[Hold, Response],
        actor: str,
    ) -> tuple[Response, str]:
        """The hold as a transaction of several statements: the request id
        claimed first, lapsed holds on the locked slots reclaimed if that
        makes room."""
        async with self._repo.transaction(tenant_id, actor) as tx:
            replayed = await call.claim(tx)
            if replayed is not None:
                return replayed, "replayed"
            slots, now = await self._lock_slots(tx, request.slot_ids)
            slots = await capacity.ensure_capacity(tx, slots, request.quantity)
            hold = capacity.new_hold(request, previews, slots, now)
            trace.get_current_span().set_attribute("holdfast.hold_id", str(hold.id))
            response, stored = call.respond(hold)
            await tx.insert_hold(hold, call.key, stored)
        return response, "placed"

    # --- reading -------------------------------------------------------------

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
        if hold.window is not None:
            return await self._confirm_late_window(tx, hold, hold.window, payment_ref)
        try:
            await capacity.ensure_capacity(tx, slots, hold.quantity)
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
            decision = refund_decision(refund, paid, actor)
            refunding = decision["refund"] == "full"
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

    async def expire_due_holds(self, batch_size: int) -> int:
        expired = await self._repo.expire_due_holds(batch_size, SWEEPER_ACTOR)
        self._metrics.holds_expired.inc(expired)
        return expired

    async def forget_old_request_ids(self, older_than_hours: int, batch_size: int) -> int:
        return await self._repo.prune_request_records(older_than_hours, batch_size)
