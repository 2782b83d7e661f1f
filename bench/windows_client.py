"""The window-hold benchmark's client: windowed resources with many units made
through the gRPC InventoryService, and the CreateHold calls it times.

Every window is a two-hour seating with a 15-minute turnover, on a grid of
three hours per unit, so the n-th window of a unit never touches its
(n+1)-th: `window_of` is shared with the pgbench script's arithmetic.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime, timedelta

import grpc
from google.protobuf.duration_pb2 import Duration

from bench.grpc_load import (
    BASE_TIME,
    CALL_TIMEOUT_SECONDS,
    OK,
    Channels,
    HoldCall,
    outcome_of_status,
)
from holdfast.contracts.booking.v1 import (
    booking_pb2,
    booking_pb2_grpc,
    inventory_pb2,
    inventory_pb2_grpc,
)
from holdfast.contracts.common.v1 import money_pb2
from holdfast.platform.grpc_errors import details_of
from holdfast.platform.proto_time import time_range

SEATING = timedelta(hours=2)
TURNOVER = timedelta(minutes=15)
# The n-th window of a unit starts n strides after BASE_TIME.
STRIDE = timedelta(hours=3)
PARTY = 2
# What the bench's resources are priced at (per booking).
PRICE_MINOR = 1000


def _duration(span: timedelta) -> Duration:
    duration = Duration()
    duration.FromTimedelta(span)
    return duration


def window_of(n: int) -> tuple[datetime, datetime]:
    """The n-th window of a unit, [start, end)."""
    start = BASE_TIME + n * STRIDE
    return start, start + SEATING


class WindowClient(Channels):
    """Booking and inventory stubs over several channels for one tenant."""

    def __init__(self, target: str, tenant: str, channels: int) -> None:
        super().__init__(target, tenant, channels)
        self._booking = [booking_pb2_grpc.BookingServiceStub(c) for c in self._channels]
        self._inventory = inventory_pb2_grpc.InventoryServiceStub(self._channels[0])

    async def windowed(self, name: str, units: int, size: int = 4) -> tuple[str, list[str]]:
        """A windowed resource open all day in UTC with `units` units of `size`
        seats; its id and its units' ids, in name order."""
        call = {"metadata": self.metadata, "timeout": CALL_TIMEOUT_SECONDS}
        created = await self._inventory.CreateResource(
            inventory_pb2.CreateResourceRequest(
                name=name,
                time_zone="UTC",
                price=money_pb2.Money(currency_code="EUR", amount_minor=PRICE_MINOR),
                kind=inventory_pb2.RESOURCE_KIND_WINDOWED,
                window_rules=inventory_pb2.WindowRules(
                    min_duration=_duration(SEATING),
                    max_duration=_duration(SEATING),
                    granularity=_duration(timedelta(minutes=15)),
                    buffer_after=_duration(TURNOVER),
                ),
            ),
            **call,
        )
        resource_id: str = created.resource.resource_id
        whole_day = [inventory_pb2.OpeningRange(opens="00:00", closes="00:00")]
        await self._inventory.SetWeeklyHours(
            inventory_pb2.SetWeeklyHoursRequest(
                resource_id=resource_id,
                weekly=[
                    inventory_pb2.WeeklyHours(weekday=day, ranges=whole_day)
                    for day in inventory_pb2.Weekday.values()[1:]
                ],
            ),
            **call,
        )
        unit_ids = []
        for number in range(units):
            made = await self._inventory.CreateUnit(
                inventory_pb2.CreateUnitRequest(
                    resource_id=resource_id, name=f"T{number:04d}", size=size
                ),
                **call,
            )
            unit_ids.append(made.unit.unit_id)
        return resource_id, unit_ids

    def _request(
        self, resource_id: str, n: int, unit_id: str = ""
    ) -> booking_pb2.CreateHoldRequest:
        return booking_pb2.CreateHoldRequest(
            resource_id=resource_id,
            window=time_range(*window_of(n)),
            party_size=PARTY,
            unit_id=unit_id,
            customer_ref="bench",
        )

    async def _create(self, i: int, request: booking_pb2.CreateHoldRequest) -> str:
        try:
            await self._booking[i % len(self._booking)].CreateHold(
                request, metadata=self.metadata, timeout=CALL_TIMEOUT_SECONDS
            )
        except grpc.aio.AioRpcError as error:
            details = details_of(error)
            return outcome_of_status(details.code, details.reason)
        return OK

    def spread_holder(self, resource_id: str, unit_ids: Sequence[str]) -> HoldCall:
        """Each call holds the next window nobody asked for yet: call n takes
        unit n mod len(unit_ids), its window n // len(unit_ids), so calls in
        flight together are on different units and never overlap, across
        phases too (the count goes on)."""
        numbers = itertools.count()

        async def hold(i: int) -> str:
            n = next(numbers)
            unit = n % len(unit_ids)
            return await self._create(
                i, self._request(resource_id, n // len(unit_ids), unit_ids[unit])
            )

        return hold

    def same_window_holder(self, resource_id: str) -> HoldCall:
        """Every call asks for the same window for a party (the hot window)."""
        request = self._request(resource_id, 0)

        async def hold(i: int) -> str:
            return await self._create(i, request)

        return hold
