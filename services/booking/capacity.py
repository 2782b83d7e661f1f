"""Whether slots can take a hold: the capacity checks of a reservation, and
the hold it makes. A slot's free units are its capacity less what is held
and booked (see `rules.OCCUPIES`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from holdfast.platform.errors import DomainError, ErrorKind, failed_precondition, not_found
from services.booking import rules
from services.booking.domain import (
    Hold,
    HoldLine,
    HoldRequest,
    Slot,
    SlotPreview,
    in_time_order,
)
from services.booking.repository import Transaction


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


def refusal(slots: Sequence[Slot], quantity: int) -> DomainError:
    """Why slots that cannot take `quantity` refuse it: closed, or sold out."""
    return slot_closed(slots) if any(s.closed for s in slots) else sold_out(slots, quantity)


def check_slots_exist(request: HoldRequest, previews: Sequence[SlotPreview]) -> None:
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


def clearly_unavailable(previews: Sequence[SlotPreview], quantity: int) -> bool:
    return any(
        p.slot.closed or (p.slot.free < quantity and not p.has_expired_holds) for p in previews
    )


async def ensure_capacity(tx: Transaction, slots: list[Slot], quantity: int) -> list[Slot]:
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


def new_hold(
    request: HoldRequest, previews: Sequence[SlotPreview], slots: Sequence[Slot], now: datetime
) -> Hold:
    """The hold `request` makes on the locked `slots`, priced as previewed."""
    prices = {p.slot.id: p for p in previews}
    return Hold(
        id=uuid.uuid4(),
        resource_id=request.resource_id,
        status=rules.CREATE.to_status,
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
