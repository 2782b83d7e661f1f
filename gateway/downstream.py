"""The gRPC services behind the gateway: pooled channels, typed stubs, and
the metadata every call carries (tenant, actor; the correlation id and trace
context travel through the channel's interceptors)."""

from __future__ import annotations

from typing import cast

from holdfast.contracts.availability.v1 import availability_pb2_grpc
from holdfast.contracts.booking.v1 import booking_pb2_grpc, inventory_pb2_grpc
from holdfast.platform.caller import ACTOR_KEY
from holdfast.platform.context import TENANT_ID_KEY
from holdfast.platform.grpc_server import open_channel


class Downstream:
    def __init__(self, booking_target: str, availability_target: str) -> None:
        self.booking_channel = open_channel(booking_target)
        self.availability_channel = open_channel(availability_target)
        self.booking = cast(
            "booking_pb2_grpc.BookingServiceAsyncStub",
            booking_pb2_grpc.BookingServiceStub(self.booking_channel),
        )
        self.inventory = cast(
            "inventory_pb2_grpc.InventoryServiceAsyncStub",
            inventory_pb2_grpc.InventoryServiceStub(self.booking_channel),
        )
        self.availability = cast(
            "availability_pb2_grpc.AvailabilityServiceAsyncStub",
            availability_pb2_grpc.AvailabilityServiceStub(self.availability_channel),
        )

    async def close(self) -> None:
        await self.booking_channel.close()
        await self.availability_channel.close()


def call_metadata(tenant: str, key_prefix: str) -> tuple[tuple[str, str], ...]:
    return ((TENANT_ID_KEY, tenant), (ACTOR_KEY, f"api-key:{key_prefix}"))
