"""Proto <-> domain conversion for the booking service's messages."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from google.protobuf.message import Message

from holdfast.contracts.booking.v1 import booking_pb2, inventory_pb2
from holdfast.contracts.common.v1 import money_pb2
from holdfast.platform.proto_time import time_range, timestamp
from services.booking.domain import (
    Checkout,
    Hold,
    HoldStatus,
    HoldWindow,
    Refund,
    Resource,
    Slot,
)
from services.booking.idempotency import ResponseCodec


def money(amount_minor: int, currency: str) -> money_pb2.Money:
    return money_pb2.Money(currency_code=currency, amount_minor=amount_minor)


def resource(value: Resource) -> inventory_pb2.Resource:
    return inventory_pb2.Resource(
        resource_id=str(value.id),
        name=value.name,
        time_zone=value.time_zone,
        price=money(value.price_minor, value.currency),
        default_capacity=value.default_capacity,
        create_time=timestamp(value.created_at),
        kind=inventory_pb2.ResourceKind.Value(f"RESOURCE_KIND_{value.kind.value}"),
    )


def slot(value: Slot) -> inventory_pb2.Slot:
    return inventory_pb2.Slot(
        slot_id=str(value.id),
        resource_id=str(value.resource_id),
        time_range=time_range(value.starts_at, value.ends_at),
        capacity=value.capacity,
        held=value.held,
        booked=value.booked,
        available=value.available,
        closed=value.closed,
        version=value.version,
    )


def hold_status(value: HoldStatus) -> booking_pb2.HoldStatus.ValueType:
    return booking_pb2.HoldStatus.Value(f"HOLD_STATUS_{value.value}")


def read_hold_status(value: booking_pb2.HoldStatus.ValueType) -> HoldStatus | None:
    name = booking_pb2.HoldStatus.Name(value).removeprefix("HOLD_STATUS_")
    return HoldStatus(name) if name in HoldStatus.__members__ else None


def hold(value: Hold) -> booking_pb2.Hold:
    return booking_pb2.Hold(
        hold_id=str(value.id),
        resource_id=str(value.resource_id),
        status=hold_status(value.status),
        quantity=value.quantity,
        customer_ref=value.customer_ref,
        lines=[
            booking_pb2.HoldLine(
                slot_id=str(line.slot_id),
                time_range=time_range(line.starts_at, line.ends_at),
                unit_price=money(line.unit_minor, value.currency),
            )
            for line in value.lines
        ],
        total=money(value.total_minor, value.currency),
        expire_time=timestamp(value.expires_at),
        create_time=timestamp(value.created_at),
        update_time=timestamp(value.updated_at),
        payment_ref=value.payment_ref,
        status_reason=value.status_reason,
        window=hold_window(value.window) if value.window else None,
    )


def hold_window(value: HoldWindow) -> booking_pb2.HoldWindow:
    return booking_pb2.HoldWindow(
        time_range=time_range(value.window.start, value.window.end),
        unit_id=str(value.unit_id),
        unit_name=value.unit_name,
        guarded_range=time_range(value.guarded.start, value.guarded.end),
    )


def checkout(value: Checkout) -> booking_pb2.Checkout:
    return booking_pb2.Checkout(
        hold_id=str(value.hold_id),
        attempt=value.attempt,
        session_id=value.session_id or "",
        url=value.url or "",
        status=booking_pb2.CheckoutStatus.Value(f"CHECKOUT_STATUS_{value.status.value}"),
        expire_time=timestamp(value.expires_at),
        amount=money(value.amount_minor, value.currency),
        failure_reason=value.failure_reason,
    )


def refund(value: Refund) -> booking_pb2.Refund:
    return booking_pb2.Refund(
        payment_ref=value.payment_ref,
        refund_id=value.refund_id or "",
        amount=money(value.amount_minor, value.currency),
        status=booking_pb2.RefundStatus.Value(f"REFUND_STATUS_{value.status.value}"),
        failure_reason=value.failure_reason,
    )


# The responses of the idempotent RPCs, and how they are stored for a replay:
# given once here, at the edge, so the domain never handles the bytes.
ProtoMessage = TypeVar("ProtoMessage", bound=Message)
Result = TypeVar("Result")


def stored_as_proto(
    message: type[ProtoMessage], respond: Callable[[Result], ProtoMessage]
) -> ResponseCodec[Result, ProtoMessage]:
    return ResponseCodec(respond, _serialized, message.FromString)


def _serialized(message: Message) -> bytes:
    return message.SerializeToString()


def _created_hold(value: Hold) -> booking_pb2.CreateHoldResponse:
    return booking_pb2.CreateHoldResponse(hold=hold(value))


def _created_resource(value: Resource) -> inventory_pb2.CreateResourceResponse:
    return inventory_pb2.CreateResourceResponse(resource=resource(value))


def _created_slots(values: list[Slot]) -> inventory_pb2.CreateSlotsResponse:
    return inventory_pb2.CreateSlotsResponse(slots=[slot(s) for s in values])


CREATE_HOLD = stored_as_proto(booking_pb2.CreateHoldResponse, _created_hold)
CREATE_RESOURCE = stored_as_proto(inventory_pb2.CreateResourceResponse, _created_resource)
CREATE_SLOTS = stored_as_proto(inventory_pb2.CreateSlotsResponse, _created_slots)
