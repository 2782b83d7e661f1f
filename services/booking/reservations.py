"""Holds and bookings: the decisions of the reservation transactions.

The SQL lives in the repository; here is what is checked, in which order, and
what each outcome means. Nothing here talks to anything but Postgres.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from opentelemetry import trace

from holdfast.platform.errors import DomainError, ErrorKind, failed_precondition, not_found
from holdfast.platform.pagination import Cursor
from services.booking.domain import (
    Hold,
    HoldFilter,
    HoldLine,
    HoldRequest,
    HoldStatus,
    RequestKey,
    Slot,
    in_time_order,
)
from services.booking.metrics import BookingMetrics
from services.booking.repository import BookingRepository, SlotPreview, Transaction

EncodeHold = Callable[[Hold], bytes]

SWEEPER_ACTOR = "system:sweeper"
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


def check_replay(record: Any, key: RequestKey) -> bytes:
    """The stored first response for `key`, or an error if the id was used otherwise."""
    method, request_hash, response = record["method"], record["request_hash"], record["response"]
    if method != key.method or bytes(request_hash) != key.request_hash:
        raise DomainError(
            ErrorKind.ALREADY_EXISTS,
            "REQUEST_ID_REUSED",
            "request_id was already used for a different request",
            {"request_id": key.request_id},
        )
    if response is None:  # pragma: no cover - the claim commits with its response
        raise DomainError(
            ErrorKind.ABORTED, "REQUEST_IN_PROGRESS", "retry shortly", retry_after=0.1
        )
    return bytes(response)


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
        key: RequestKey | None,
        encode: EncodeHold,
        actor: str,
    ) -> bytes:
        """Takes capacity on every requested slot, or on none; returns the
        encoded response (the first one again when `key` was seen before)."""
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
            response, outcome = await self._create_hold(tenant_id, request, key, encode, actor)
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
        key: RequestKey | None,
        encode: EncodeHold,
        actor: str,
    ) -> tuple[bytes, str]:
        previews = await self._repo.preview_slots(tenant_id, request.slot_ids, request.quantity)
        self._check_slots_exist(request, previews)
        # A slot that is full with nothing to reclaim answers at once, without
        # queueing for its row lock: this is what keeps a hot slot fast.
        if self._clearly_unavailable(previews, request.quantity):
            if key is not None:
                # The first request of this id may be what sold the slot out.
                record = await self._repo.find_request(tenant_id, key.request_id)
                if record is not None:
                    return check_replay(record, key), "replayed"
            slots = [p.slot for p in previews]
            raise (
                slot_closed(slots)
                if any(s.closed for s in slots)
                else sold_out(slots, request.quantity)
            )

        async with self._repo.transaction(tenant_id, actor) as tx:
            if key is not None:
                record = await tx.claim_request(key)
                if record is not None:
                    return check_replay(record, key), "replayed"
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
            response = encode(hold)
            await tx.insert_hold(hold, key, response if key else None)
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
                HoldStatus.RELEASED,
                held_delta=-hold.quantity,
                booked_delta=0,
                reason=reason or "released by caller",
            )

    async def confirm_hold(
        self, tenant_id: str, hold_id: uuid.UUID, payment_ref: str, actor: str
    ) -> Hold:
        """HELD -> CONFIRMED, as a compare-and-set on the locked hold.

        A hold that lapsed (swept or not) is still confirmed when its capacity
        can be had: a lapsed but unswept hold still holds it; a swept or
        released one takes it again if free. Otherwise the caller is told to
        refund with HOLD_EXPIRED_NO_CAPACITY.
        """
        async with self._repo.transaction(tenant_id, actor) as tx:
            hold = await self._lock_hold(tx, hold_id, "hold")
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
                confirmed = await tx.transition_hold(
                    hold,
                    HoldStatus.CONFIRMED,
                    held_delta=-hold.quantity,
                    booked_delta=hold.quantity,
                    reason="paid after the hold lapsed" if late else "",
                    payment_ref=payment_ref,
                )
            else:
                # RELEASED or EXPIRED: the payment came late; take the capacity again.
                try:
                    await self._ensure_capacity(tx, slots, hold.quantity)
                except DomainError as error:
                    raise failed_precondition(
                        "HOLD_EXPIRED_NO_CAPACITY",
                        "the hold lapsed and its capacity is gone; refund the payment",
                        {"status": hold.status.value, "cause": error.reason},
                    ) from None
                confirmed = await tx.transition_hold(
                    hold,
                    HoldStatus.CONFIRMED,
                    held_delta=0,
                    booked_delta=hold.quantity,
                    reason=f"paid after the hold was {hold.status.value.lower()}; capacity retaken",
                    payment_ref=payment_ref,
                )
        self._metrics.bookings.labels("confirmed").inc()
        return confirmed

    async def cancel_booking(
        self, tenant_id: str, booking_id: uuid.UUID, reason: str, actor: str
    ) -> Hold:
        async with self._repo.transaction(tenant_id, actor) as tx:
            hold = await self._lock_hold(tx, booking_id, "booking")
            if hold.status is HoldStatus.CANCELLED:
                return hold
            if hold.status is not HoldStatus.CONFIRMED:
                raise failed_precondition(
                    "BOOKING_NOT_CANCELLABLE",
                    f"a {hold.status.value} booking cannot be cancelled"
                    + ("; release the hold instead" if hold.status is HoldStatus.HELD else ""),
                    {"status": hold.status.value},
                )
            await self._lock_slots(tx, hold.slot_ids)
            cancelled = await tx.transition_hold(
                hold,
                HoldStatus.CANCELLED,
                held_delta=0,
                booked_delta=-hold.quantity,
                reason=reason or "cancelled by caller",
            )
        self._metrics.bookings.labels("cancelled").inc()
        return cancelled

    async def mark_refunded(
        self, tenant_id: str, booking_id: uuid.UUID, payment_ref: str, reason: str, actor: str
    ) -> Hold:
        """CONFIRMED -> REFUNDED once the booking's payment was refunded in full."""
        async with self._repo.transaction(tenant_id, actor) as tx:
            hold = await self._lock_hold(tx, booking_id, "booking")
            if hold.status is HoldStatus.REFUNDED:
                return hold
            if hold.status is not HoldStatus.CONFIRMED or hold.payment_ref != payment_ref:
                raise failed_precondition(
                    "BOOKING_NOT_REFUNDABLE",
                    "only a confirmed booking paid by this payment can be marked refunded",
                    {"status": hold.status.value},
                )
            await self._lock_slots(tx, hold.slot_ids)
            refunded = await tx.transition_hold(
                hold,
                HoldStatus.REFUNDED,
                held_delta=0,
                booked_delta=-hold.quantity,
                reason=reason or "payment refunded",
            )
        self._metrics.bookings.labels("refunded").inc()
        return refunded

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
