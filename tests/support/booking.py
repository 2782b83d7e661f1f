"""A thin test client for the booking service: real gRPC calls with the
tenant's metadata, plus helpers to build inventory in one line."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

import grpc
from google.protobuf.duration_pb2 import Duration

from holdfast.contracts.booking.v1 import (
    booking_pb2,
    booking_pb2_grpc,
    inventory_pb2,
    inventory_pb2_grpc,
)
from holdfast.contracts.common.v1 import money_pb2
from holdfast.platform.grpc_errors import ErrorDetails, details_of
from holdfast.platform.proto_time import time_range

BASE_TIME = datetime(2031, 6, 1, 9, 0, tzinfo=UTC)


def async_stubs(
    channel: grpc.aio.Channel,
) -> tuple[booking_pb2_grpc.BookingServiceAsyncStub, inventory_pb2_grpc.InventoryServiceAsyncStub]:
    """The stubs of an aio channel, typed as such (grpc itself has no type hints;
    the async stub classes exist only in the generated .pyi files)."""
    return (
        cast(
            "booking_pb2_grpc.BookingServiceAsyncStub",
            booking_pb2_grpc.BookingServiceStub(channel),
        ),
        cast(
            "inventory_pb2_grpc.InventoryServiceAsyncStub",
            inventory_pb2_grpc.InventoryServiceStub(channel),
        ),
    )


@dataclass
class BookingClient:
    booking: booking_pb2_grpc.BookingServiceAsyncStub
    inventory: inventory_pb2_grpc.InventoryServiceAsyncStub
    tenant: str

    @classmethod
    def on(cls, channel: grpc.aio.Channel, tenant: str) -> BookingClient:
        return cls(*async_stubs(channel), tenant)

    @property
    def md(self) -> tuple[tuple[str, str], ...]:
        return (("x-tenant-id", self.tenant),)

    async def resource(
        self, *, capacity: int = 10, price_minor: int = 2500, currency: str = "EUR"
    ) -> inventory_pb2.Resource:
        response = await self.inventory.CreateResource(
            inventory_pb2.CreateResourceRequest(
                name="Harbour tour",
                time_zone="Europe/Lisbon",
                price=money_pb2.Money(currency_code=currency, amount_minor=price_minor),
                default_capacity=capacity,
            ),
            metadata=self.md,
        )
        resource: inventory_pb2.Resource = response.resource
        return resource

    async def slots(
        self,
        resource_id: str,
        count: int = 1,
        capacity: int | None = None,
        start: datetime = BASE_TIME,
    ) -> list[inventory_pb2.Slot]:
        """`count` slots of an hour each; `capacity` None: the resource's default."""
        specs = [
            inventory_pb2.SlotSpec(
                time_range=time_range(start + timedelta(hours=i), start + timedelta(hours=i + 1)),
                capacity=capacity,
            )
            for i in range(count)
        ]
        response = await self.inventory.CreateSlots(
            inventory_pb2.CreateSlotsRequest(resource_id=resource_id, slots=specs),
            metadata=self.md,
        )
        return list(response.slots)

    async def resource_with_slots(
        self, count: int = 1, capacity: int = 10
    ) -> tuple[inventory_pb2.Resource, list[inventory_pb2.Slot]]:
        resource = await self.resource(capacity=capacity)
        return resource, await self.slots(resource.resource_id, count)

    async def hold(
        self,
        resource_id: str,
        slot_ids: list[str],
        quantity: int = 1,
        *,
        ttl_seconds: float | None = None,
        request_id: str = "",
        customer_ref: str = "cust-1",
    ) -> booking_pb2.Hold:
        request = booking_pb2.CreateHoldRequest(
            resource_id=resource_id,
            slot_ids=slot_ids,
            quantity=quantity,
            customer_ref=customer_ref,
            request_id=request_id,
        )
        if ttl_seconds is not None:
            ttl = Duration()
            ttl.FromNanoseconds(int(ttl_seconds * 1e9))
            request.ttl.CopyFrom(ttl)
        response = await self.booking.CreateHold(request, metadata=self.md)
        hold: booking_pb2.Hold = response.hold
        return hold

    async def confirm(self, hold_id: str, payment_ref: str = "pi_test") -> booking_pb2.Hold:
        request = booking_pb2.ConfirmHoldRequest(hold_id=hold_id, payment_ref=payment_ref)
        hold: booking_pb2.Hold = (await self.booking.ConfirmHold(request, metadata=self.md)).hold
        return hold

    async def release(self, hold_id: str) -> booking_pb2.Hold:
        request = booking_pb2.ReleaseHoldRequest(hold_id=hold_id)
        hold: booking_pb2.Hold = (await self.booking.ReleaseHold(request, metadata=self.md)).hold
        return hold

    async def cancel(self, booking_id: str) -> booking_pb2.Hold:
        request = booking_pb2.CancelBookingRequest(booking_id=booking_id)
        response = await self.booking.CancelBooking(request, metadata=self.md)
        booking: booking_pb2.Hold = response.booking
        return booking

    async def set_capacity(self, slot_id: str, capacity: int) -> None:
        await self.inventory.UpdateSlotCapacity(
            inventory_pb2.UpdateSlotCapacityRequest(slot_id=slot_id, capacity=capacity),
            metadata=self.md,
        )

    async def close(self, slot_id: str) -> None:
        request = inventory_pb2.CloseSlotRequest(slot_id=slot_id)
        await self.inventory.CloseSlot(request, metadata=self.md)

    async def reopen(self, slot_id: str) -> None:
        request = inventory_pb2.ReopenSlotRequest(slot_id=slot_id)
        await self.inventory.ReopenSlot(request, metadata=self.md)

    async def slot(self, resource_id: str, slot_id: str) -> inventory_pb2.Slot:
        response = await self.inventory.ListSlots(
            inventory_pb2.ListSlotsRequest(resource_id=resource_id, page_size=500),
            metadata=self.md,
        )
        found: inventory_pb2.Slot = next(s for s in response.slots if s.slot_id == slot_id)
        return found


async def error_of(call: object) -> ErrorDetails:
    """Awaits a call that must fail and returns its rich error details."""
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as error:
        return details_of(error)
    raise AssertionError("the call succeeded but was expected to fail")


async def outcome(call: object) -> str:
    """ "OK", or the failed call's status code and reason as "CODE:REASON"."""
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as error:
        details = details_of(error)
        return f"{details.code.name}:{details.reason}"
    return "OK"
