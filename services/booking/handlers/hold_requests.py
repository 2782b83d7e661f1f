"""CreateHold's two shapes, read from the proto: slots and a quantity (a
slotted resource), or a window with a party size and/or a unit (a windowed
resource). Each refuses the other's fields, naming them."""

from __future__ import annotations

import uuid
from datetime import timedelta

from holdfast.contracts.booking.v1 import booking_pb2
from holdfast.platform.proto_time import checked_time_range
from holdfast.platform.validation import Violations
from holdfast.scheduling.intervals import Interval
from services.booking.domain import HoldRequest, WindowHoldRequest
from services.booking.limits import MAX_WINDOW, BookingLimits, check_count, check_each_once


def asks_for_window(request: booking_pb2.CreateHoldRequest) -> bool:
    """Whether the request is a window hold: any of its window fields is set."""
    return request.HasField("window") or request.party_size != 0 or bool(request.unit_id)


def slots_request(
    v: Violations,
    request: booking_pb2.CreateHoldRequest,
    limits: BookingLimits,
    resource_id: uuid.UUID | None,
    ttl: timedelta,
) -> HoldRequest | None:
    most = limits.max_slots_per_hold
    check_count(v, "slot_ids", len(request.slot_ids), most, "slot")
    slot_ids = [v.uuid(f"slot_ids[{i}]", raw) for i, raw in enumerate(request.slot_ids[:most])]
    check_each_once(v, "slot_ids", slot_ids, "slot")
    v.int_range("quantity", request.quantity, 1, limits.max_quantity)
    if resource_id is None:
        return None
    return HoldRequest(
        resource_id=resource_id,
        slot_ids=tuple(slot_id for slot_id in slot_ids if slot_id is not None),
        quantity=request.quantity,
        customer_ref=request.customer_ref,
        ttl=ttl,
    )


def window_request(
    v: Violations,
    request: booking_pb2.CreateHoldRequest,
    limits: BookingLimits,
    resource_id: uuid.UUID | None,
    ttl: timedelta,
) -> WindowHoldRequest | None:
    if request.slot_ids:
        v.add("slot_ids", "must be empty in a window hold (slots are for slotted resources)")
    if request.quantity:
        v.add("quantity", "must be unset in a window hold: party_size says who it is for")
    window = _window(v, request)
    party_size = request.party_size or None
    if party_size is not None:
        v.int_range("party_size", party_size, 1, limits.max_quantity)
    unit_id = v.uuid("unit_id", request.unit_id, required=False)
    if party_size is None and not request.unit_id:
        v.add("party_size", "is required unless unit_id names the unit")
    if resource_id is None or window is None:
        return None
    return WindowHoldRequest(
        resource_id=resource_id,
        window=window,
        party_size=party_size,
        unit_id=unit_id,
        customer_ref=request.customer_ref,
        ttl=ttl,
    )


def _window(v: Violations, request: booking_pb2.CreateHoldRequest) -> Interval | None:
    if not request.HasField("window"):
        v.add("window", "is required in a window hold")
        return None
    times = checked_time_range(v, "window", request.window)
    if times is None:
        return None
    window = Interval(*times)
    if window.duration > MAX_WINDOW:
        v.add("window", f"must last at most {MAX_WINDOW.days} days")
        return None
    return window
