"""A windowed resource's setup: its rules, units and opening hours.

Each change runs in one transaction that locks the resource (or the unit),
checks it is the tenant's and windowed, makes the change, and writes its
audit row and the resource's invalidation (rules, hours and units all move
what is free). Changing the setup never touches existing holds and bookings.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from holdfast.platform.errors import not_found
from holdfast.scheduling.hours import OpeningHours, OpeningRange
from services.booking.domain import Resource, ResourceKind, ResourceUnit, WindowTerms
from services.booking.idempotency import IdempotentCall
from services.booking.repository import BookingRepository, Transaction
from services.booking.repository.units import not_windowed

Response = TypeVar("Response")
_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class WindowSetup:
    """What GetWindowSetup answers: units best first (smallest, then by name)."""

    resource: Resource
    terms: WindowTerms
    units: list[ResourceUnit]
    hours: OpeningHours


def _ranges(ranges: Sequence[OpeningRange]) -> list[list[str]]:
    return [[r.opens.strftime("%H:%M"), r.closes.strftime("%H:%M")] for r in ranges]


def _terms_details(terms: WindowTerms) -> dict[str, Any]:
    rules = terms.rules
    spans = {
        "min_duration": rules.min_duration,
        "max_duration": rules.max_duration,
        "granularity": rules.granularity,
        "buffer_before": rules.buffer_before,
        "buffer_after": rules.buffer_after,
        "lead_time": rules.lead_time,
        "price_period": terms.price_period,
    }
    return {f"{name}_minutes": span // _MINUTE for name, span in spans.items()}


class WindowedInventory:
    def __init__(self, repository: BookingRepository) -> None:
        self._repo = repository

    async def make_windowed(
        self, tx: Transaction, resource: Resource, terms: WindowTerms
    ) -> Resource:
        """Sets `resource`'s rules, making it windowed if it has no slots."""
        await tx.make_windowed(resource.id, terms.rules, terms.price_period)
        await tx.record_window_change(
            resource.id, "window_rules.set", ("resource", resource.id), _terms_details(terms)
        )
        return replace(resource, kind=ResourceKind.WINDOWED)

    async def set_rules(
        self, tenant_id: str, resource_id: uuid.UUID, terms: WindowTerms, actor: str
    ) -> WindowTerms:
        async with self._repo.transaction(tenant_id, actor) as tx:
            resource = await tx.lock_resource(resource_id)
            if resource is None:
                raise not_found("resource", str(resource_id))
            await self.make_windowed(tx, resource, terms)
        return terms

    async def setup(self, tenant_id: str, resource_id: uuid.UUID) -> WindowSetup:
        resource = await self._repo.get_resource(tenant_id, resource_id)
        if resource is None:
            raise not_found("resource", str(resource_id))
        terms = await self._repo.window_terms(tenant_id, resource_id)
        if resource.kind is not ResourceKind.WINDOWED or terms is None:
            raise not_windowed(resource_id, "is slotted: it has no window rules, units or hours")
        units = await self._repo.units(tenant_id, resource_id)
        return WindowSetup(resource, terms, units, await self._hours(tenant_id, resource))

    # --- units ---------------------------------------------------------------

    async def create_unit(
        self,
        tenant_id: str,
        resource_id: uuid.UUID,
        name: str,
        size: int,
        call: IdempotentCall[ResourceUnit, Response],
        actor: str,
    ) -> Response:
        async def create(tx: Transaction) -> ResourceUnit:
            await self._windowed(tx, resource_id)
            unit = await tx.add_unit(resource_id, name, size)
            await tx.record_window_change(
                resource_id, "unit.created", ("unit", unit.id), {"name": name, "size": size}
            )
            return unit

        return await call.run(self._repo, tenant_id, actor, create)

    async def update_unit(
        self, tenant_id: str, unit_id: uuid.UUID, name: str | None, size: int | None, actor: str
    ) -> ResourceUnit:
        """Renames and/or resizes the unit; nothing asked or nothing new changes nothing."""
        async with self._repo.transaction(tenant_id, actor) as tx:
            unit = await self._unit(tx, unit_id)
            changes: dict[str, Any] = {}
            if name is not None and name != unit.name:
                changes["name"] = {"from": unit.name, "to": name}
            if size is not None and size != unit.size:
                changes["size"] = {"from": unit.size, "to": size}
            if not changes:
                return unit
            changed = await tx.change_unit(unit_id, name=name, size=size)
            assert changed is not None  # locked above
            await tx.record_window_change(
                unit.resource_id, "unit.changed", ("unit", unit_id), changes
            )
            return changed

    async def set_active(
        self, tenant_id: str, unit_id: uuid.UUID, active: bool, actor: str
    ) -> ResourceUnit:
        """Retires (no new holds) or restores a unit; its holds and bookings stay."""
        async with self._repo.transaction(tenant_id, actor) as tx:
            unit = await self._unit(tx, unit_id)
            if unit.active == active:
                return unit
            changed = await tx.change_unit(unit_id, active=active)
            assert changed is not None  # locked above
            action = "unit.restored" if active else "unit.retired"
            await tx.record_window_change(unit.resource_id, action, ("unit", unit_id), {})
            return changed

    # --- opening hours -------------------------------------------------------

    async def set_weekly_hours(
        self,
        tenant_id: str,
        resource_id: uuid.UUID,
        weekly: Mapping[int, Sequence[OpeningRange]],
        actor: str,
    ) -> OpeningHours:
        async with self._repo.transaction(tenant_id, actor) as tx:
            resource = await self._windowed(tx, resource_id)
            await tx.set_weekly_hours(resource_id, weekly)
            details = {"weekly": {str(day): _ranges(r) for day, r in sorted(weekly.items())}}
            await tx.record_window_change(
                resource_id, "hours.weekly_set", ("resource", resource_id), details
            )
        return await self._hours(tenant_id, resource)

    async def set_hours_exception(
        self,
        tenant_id: str,
        resource_id: uuid.UUID,
        day: date,
        ranges: Sequence[OpeningRange],
        actor: str,
    ) -> OpeningHours:
        async with self._repo.transaction(tenant_id, actor) as tx:
            resource = await self._windowed(tx, resource_id)
            await tx.set_hours_exception(resource_id, day, ranges)
            details = {"date": day.isoformat(), "ranges": _ranges(ranges)}
            await tx.record_window_change(
                resource_id, "hours.exception_set", ("resource", resource_id), details
            )
        return await self._hours(tenant_id, resource)

    async def clear_hours_exception(
        self, tenant_id: str, resource_id: uuid.UUID, day: date, actor: str
    ) -> OpeningHours:
        """`day` follows the weekly hours again (already did: nothing changes)."""
        async with self._repo.transaction(tenant_id, actor) as tx:
            resource = await self._windowed(tx, resource_id)
            if await tx.clear_hours_exception(resource_id, day):
                await tx.record_window_change(
                    resource_id,
                    "hours.exception_cleared",
                    ("resource", resource_id),
                    {"date": day.isoformat()},
                )
        return await self._hours(tenant_id, resource)

    # --- shared --------------------------------------------------------------

    async def _hours(self, tenant_id: str, resource: Resource) -> OpeningHours:
        return await self._repo.opening_hours(tenant_id, resource.id, ZoneInfo(resource.time_zone))

    @staticmethod
    async def _windowed(tx: Transaction, resource_id: uuid.UUID) -> Resource:
        """The tenant's resource, locked; NOT_FOUND or RESOURCE_NOT_WINDOWED otherwise."""
        resource = await tx.lock_resource(resource_id)
        if resource is None:
            raise not_found("resource", str(resource_id))
        if resource.kind is not ResourceKind.WINDOWED:
            raise not_windowed(resource_id, "is slotted: it has no window rules, units or hours")
        return resource

    @staticmethod
    async def _unit(tx: Transaction, unit_id: uuid.UUID) -> ResourceUnit:
        unit = await tx.lock_unit(unit_id)
        if unit is None:
            raise not_found("unit", str(unit_id))
        return unit
