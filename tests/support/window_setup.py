"""Windowed resources made over gRPC in a line: the requests' parts (rules in
minutes, "HH:MM" ranges) and a client of the setup calls."""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.duration_pb2 import Duration

from holdfast.contracts.booking.v1 import inventory_pb2
from holdfast.contracts.common.v1 import money_pb2
from tests.support.booking import BookingClient


def minutes(count: int) -> Duration:
    span = Duration()
    span.FromSeconds(count * 60)
    return span


def rules(
    *,
    min_minutes: int = 60,
    max_minutes: int = 180,
    every: int = 15,
    before: int = 0,
    after: int = 15,
    lead: int = 0,
    price_period: int = 0,
) -> inventory_pb2.WindowRules:
    """A restaurant's, by default: one to three hours on the quarter hour, 15 minutes turnover."""
    return inventory_pb2.WindowRules(
        min_duration=minutes(min_minutes),
        max_duration=minutes(max_minutes),
        granularity=minutes(every),
        buffer_before=minutes(before),
        buffer_after=minutes(after),
        lead_time=minutes(lead),
        price_period=minutes(price_period),
    )


def opening(*ranges: str) -> list[inventory_pb2.OpeningRange]:
    """Ranges from "HH:MM-HH:MM" texts."""
    return [
        inventory_pb2.OpeningRange(opens=text.split("-")[0], closes=text.split("-")[1])
        for text in ranges
    ]


def day(weekday: int, *ranges: str) -> inventory_pb2.WeeklyHours:
    return inventory_pb2.WeeklyHours(weekday=weekday, ranges=opening(*ranges))  # type: ignore[arg-type]


@dataclass
class SetupClient:
    """A tenant's calls to set up windowed resources."""

    client: BookingClient

    async def restaurant(
        self, window_rules: inventory_pb2.WindowRules | None = None, *, name: str = "Bistro"
    ) -> inventory_pb2.Resource:
        response = await self.client.inventory.CreateResource(
            inventory_pb2.CreateResourceRequest(
                name=name,
                time_zone="Europe/Paris",
                price=money_pb2.Money(currency_code="EUR", amount_minor=1000),
                kind=inventory_pb2.RESOURCE_KIND_WINDOWED,
                window_rules=window_rules or rules(),
            ),
            metadata=self.client.md,
        )
        resource: inventory_pb2.Resource = response.resource
        return resource

    async def unit(
        self, resource_id: str, name: str, size: int, request_id: str = ""
    ) -> inventory_pb2.Unit:
        response = await self.client.inventory.CreateUnit(
            inventory_pb2.CreateUnitRequest(
                resource_id=resource_id, name=name, size=size, request_id=request_id
            ),
            metadata=self.client.md,
        )
        unit: inventory_pb2.Unit = response.unit
        return unit

    async def weekly(
        self, resource_id: str, *days: inventory_pb2.WeeklyHours
    ) -> inventory_pb2.OpeningHours:
        response = await self.client.inventory.SetWeeklyHours(
            inventory_pb2.SetWeeklyHoursRequest(resource_id=resource_id, weekly=days),
            metadata=self.client.md,
        )
        hours: inventory_pb2.OpeningHours = response.hours
        return hours

    async def setup(self, resource_id: str) -> inventory_pb2.GetWindowSetupResponse:
        response: inventory_pb2.GetWindowSetupResponse = await self.client.inventory.GetWindowSetup(
            inventory_pb2.GetWindowSetupRequest(resource_id=resource_id),
            metadata=self.client.md,
        )
        return response
