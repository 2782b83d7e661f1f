"""Protobuf answers of the services into the API's JSON models."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from google.protobuf.timestamp_pb2 import Timestamp

from gateway import models
from holdfast.contracts.availability.v1 import availability_pb2
from holdfast.contracts.booking.v1 import booking_pb2, inventory_pb2
from holdfast.contracts.common.v1 import money_pb2


def _time(value: Timestamp) -> datetime:
    return value.ToDatetime(UTC)


def _money(value: money_pb2.Money) -> dict[str, Any]:
    return {"currency": value.currency_code, "amount_minor": value.amount_minor}


def resource(value: inventory_pb2.Resource) -> models.Resource:
    return models.Resource.model_validate(
        {
            "id": value.resource_id,
            "name": value.name,
            "time_zone": value.time_zone,
            "price": _money(value.price),
            "default_capacity": value.default_capacity,
            "created_at": _time(value.create_time),
            "kind": inventory_pb2.ResourceKind.Name(value.kind)
            .removeprefix("RESOURCE_KIND_")
            .lower(),
        }
    )


def slot(value: inventory_pb2.Slot) -> models.Slot:
    return models.Slot.model_validate(
        {
            "id": value.slot_id,
            "resource_id": value.resource_id,
            "start": _time(value.time_range.start_time),
            "end": _time(value.time_range.end_time),
            "capacity": value.capacity,
            "held": value.held,
            "booked": value.booked,
            "closed": value.closed,
        }
    )


def availability(value: availability_pb2.ResourceAvailability) -> models.Availability:
    return models.Availability.model_validate(_availability_fields(value))


def availability_json(value: availability_pb2.ResourceAvailability) -> bytes:
    """The models.Availability JSON of `value`, byte for byte as pydantic
    writes it (tests/unit/gateway/test_convert_json.py), without building
    and validating the model: the hot path of the API, whose every field
    comes typed from the service."""
    return orjson.dumps(_availability_fields(value), option=orjson.OPT_UTC_Z)


def _availability_fields(value: availability_pb2.ResourceAvailability) -> dict[str, Any]:
    return {
        "resource_id": value.resource_id,
        "start": _time(value.time_range.start_time),
        "end": _time(value.time_range.end_time),
        "slots": [
            {
                "slot_id": s.slot_id,
                "start": _time(s.start_time),
                "end": _time(s.end_time),
                "capacity": s.capacity,
                "available": s.available,
                "held": s.held,
                "booked": s.booked,
                "open": s.open,
            }
            for s in value.slots
        ],
    }


def window_availability(value: availability_pb2.WindowAvailability) -> models.WindowAvailability:
    return models.WindowAvailability.model_validate(
        {
            "resource_id": value.resource_id,
            "time_zone": value.time_zone,
            "first_date": value.first_date,
            "last_date": value.last_date,
            "party_size": value.party_size,
            "duration_minutes": value.duration.seconds // 60,
            "starts": [{"start": _time(s.start_time), "unit_id": s.unit_id} for s in value.starts],
            "units": [
                {
                    "unit_id": u.unit_id,
                    "name": u.name,
                    "size": u.size,
                    "free": [
                        {"start": _time(r.start_time), "end": _time(r.end_time)} for r in u.free
                    ],
                }
                for u in value.units
            ],
        }
    )


def hold(value: booking_pb2.Hold) -> models.Hold:
    return models.Hold.model_validate(
        {
            "id": value.hold_id,
            "resource_id": value.resource_id,
            "status": booking_pb2.HoldStatus.Name(value.status)
            .removeprefix("HOLD_STATUS_")
            .lower(),
            "quantity": value.quantity,
            "customer_ref": value.customer_ref,
            "lines": [
                {
                    "slot_id": line.slot_id,
                    "start": _time(line.time_range.start_time),
                    "end": _time(line.time_range.end_time),
                    "unit_price": _money(line.unit_price),
                }
                for line in value.lines
            ],
            "total": _money(value.total),
            "expires_at": _time(value.expire_time),
            "created_at": _time(value.create_time),
            "updated_at": _time(value.update_time),
            "payment_ref": value.payment_ref,
            "status_reason": value.status_reason,
            "window": _window(value.window) if value.HasField("window") else None,
        }
    )


def _window(value: booking_pb2.HoldWindow) -> dict[str, Any]:
    return {
        "start_time": _time(value.time_range.start_time),
        "end_time": _time(value.time_range.end_time),
        "unit_id": value.unit_id,
        "unit_name": value.unit_name,
        "guarded_start_time": _time(value.guarded_range.start_time),
        "guarded_end_time": _time(value.guarded_range.end_time),
    }


def checkout(value: booking_pb2.Checkout) -> models.Checkout:
    status = booking_pb2.CheckoutStatus.Name(value.status).removeprefix("CHECKOUT_STATUS_")
    return models.Checkout.model_validate(
        {
            "hold_id": value.hold_id,
            "attempt": value.attempt,
            "session_id": value.session_id,
            "url": value.url,
            "status": status.lower(),
            "expires_at": _time(value.expire_time),
            "amount": _money(value.amount),
            "failure_reason": value.failure_reason,
        }
    )


def cancelled(value: booking_pb2.CancelBookingResponse) -> models.CancelledBooking:
    refund = None
    if value.HasField("refund"):
        status = booking_pb2.RefundStatus.Name(value.refund.status).removeprefix("REFUND_STATUS_")
        refund = {
            "payment_ref": value.refund.payment_ref,
            "refund_id": value.refund.refund_id,
            "amount": _money(value.refund.amount),
            "status": status.lower(),
            "failure_reason": value.refund.failure_reason,
        }
    return models.CancelledBooking.model_validate(
        {**hold(value.booking).model_dump(), "refund": refund}
    )
