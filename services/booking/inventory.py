"""Resources and slots: what can be booked, and how much of it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

from holdfast.platform.errors import DomainError, ErrorKind, failed_precondition, not_found
from holdfast.platform.pagination import Cursor
from services.booking.domain import (
    NewResource,
    NewSlot,
    Resource,
    ResourceKind,
    Slot,
    WindowTerms,
)
from services.booking.idempotency import IdempotentCall
from services.booking.repository import BookingRepository, Transaction
from services.booking.windowed_inventory import WindowedInventory

Response = TypeVar("Response")


class Inventory:
    def __init__(self, repository: BookingRepository) -> None:
        self._repo = repository
        # Windowed resources' rules, units and hours.
        self.windows = WindowedInventory(repository)

    async def create_resource(
        self,
        tenant_id: str,
        new: NewResource,
        call: IdempotentCall[Resource, Response],
        actor: str,
        terms: WindowTerms | None = None,
    ) -> Response:
        """A slotted resource, or with `terms` a windowed one (both in one transaction)."""

        async def create(tx: Transaction) -> Resource:
            resource = await tx.create_resource(new)
            if terms is None:
                return resource
            return await self.windows.make_windowed(tx, resource, terms)

        return await call.run(self._repo, tenant_id, actor, create)

    async def get_resource(self, tenant_id: str, resource_id: uuid.UUID) -> Resource:
        resource = await self._repo.get_resource(tenant_id, resource_id)
        if resource is None:
            raise not_found("resource", str(resource_id))
        return resource

    async def list_resources(
        self, tenant_id: str, after: Cursor | None, limit: int
    ) -> list[Resource]:
        return await self._repo.list_resources(tenant_id, after, limit)

    async def create_slots(
        self,
        tenant_id: str,
        resource_id: uuid.UUID,
        new_slots: Sequence[NewSlot],
        call: IdempotentCall[list[Slot], Response],
        actor: str,
    ) -> Response:
        resource = await self.get_resource(tenant_id, resource_id)

        async def create(tx: Transaction) -> list[Slot]:
            # Locked, so that it cannot become windowed while its slots are made.
            locked = await tx.lock_resource(resource_id)
            if locked is not None and locked.kind is ResourceKind.WINDOWED:
                raise failed_precondition(
                    "RESOURCE_NOT_SLOTTED",
                    f"resource {resource_id} is windowed: it sells its units for windows,"
                    " not slots",
                    {"resource_id": str(resource_id)},
                )
            created = await tx.create_slots(resource, new_slots)
            if created is None:
                # Raising rolls the whole batch back: all or none.
                raise DomainError(
                    ErrorKind.ALREADY_EXISTS,
                    "SLOT_EXISTS",
                    "a slot with the same start and end already exists for this resource",
                    {"resource_id": str(resource_id)},
                )
            return created

        return await call.run(self._repo, tenant_id, actor, create)

    async def list_slots(
        self,
        tenant_id: str,
        resource_id: uuid.UUID,
        window: tuple[datetime, datetime] | None,
        after: Cursor | None,
        limit: int,
    ) -> list[Slot]:
        await self.get_resource(tenant_id, resource_id)
        return await self._repo.list_slots(tenant_id, resource_id, window, after, limit)

    async def update_capacity(
        self, tenant_id: str, slot_id: uuid.UUID, capacity: int, actor: str
    ) -> Slot:
        async with self._repo.transaction(tenant_id, actor) as tx:
            slot = await self._lock_slot(tx, slot_id)
            taken = slot.held + slot.booked
            if capacity < taken:
                raise failed_precondition(
                    "CAPACITY_BELOW_TAKEN",
                    f"capacity {capacity} is below the {taken} units held or booked",
                    {"held": str(slot.held), "booked": str(slot.booked)},
                )
            return await tx.update_slot(
                slot,
                capacity=capacity,
                closed=slot.closed,
                action="slot.capacity_changed",
                details={"from": slot.capacity, "to": capacity},
            )

    async def set_closed(
        self, tenant_id: str, slot_id: uuid.UUID, closed: bool, actor: str
    ) -> Slot:
        async with self._repo.transaction(tenant_id, actor) as tx:
            slot = await self._lock_slot(tx, slot_id)
            if slot.closed == closed:
                return slot
            return await tx.update_slot(
                slot,
                capacity=slot.capacity,
                closed=closed,
                action="slot.closed" if closed else "slot.reopened",
                details={},
            )

    @staticmethod
    async def _lock_slot(tx: Transaction, slot_id: uuid.UUID) -> Slot:
        slot = await tx.lock_slot(slot_id)
        if slot is None:
            raise not_found("slot", str(slot_id))
        return slot
