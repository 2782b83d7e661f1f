"""InventoryService: resources and their slots, proto in and out."""

from __future__ import annotations

import zoneinfo
from functools import cache

import grpc

from holdfast.contracts.booking.v1 import (
    inventory_pb2,
    inventory_pb2_grpc,
)
from holdfast.platform import pagination
from holdfast.platform.context import current_actor, current_tenant
from holdfast.platform.proto_time import checked_time_range
from holdfast.platform.validation import Violations, parse_id
from services.booking import convert
from services.booking.config import BookingSettings
from services.booking.convert_windows import read_kind, read_terms
from services.booking.domain import NewResource, NewSlot, ResourceKind, WindowTerms
from services.booking.handlers.request_keys import request_key
from services.booking.handlers.windowed_inventory import WindowedInventoryCalls
from services.booking.idempotency import IdempotentCall
from services.booking.inventory import Inventory
from services.booking.limits import (
    MAX_CAPACITY,
    MAX_PRICE_MINOR,
    MAX_TEXT,
    BookingLimits,
    check_count,
    check_each_once,
)


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _window_terms(
    v: Violations, request: inventory_pb2.CreateResourceRequest
) -> WindowTerms | None:
    """A WINDOWED resource's rules (required); a slotted one takes none."""
    kind = read_kind(v, request.kind)
    if kind is ResourceKind.WINDOWED:
        if request.HasField("window_rules"):
            return read_terms(v, "window_rules", request.window_rules)
        v.add("window_rules", "is required for a RESOURCE_KIND_WINDOWED resource")
    elif kind is ResourceKind.SLOTTED and request.HasField("window_rules"):
        v.add("window_rules", "only a RESOURCE_KIND_WINDOWED resource takes window rules")
    return None


class InventoryHandler(WindowedInventoryCalls, inventory_pb2_grpc.InventoryServiceServicer):
    """Resources and slots here; windowed resources' rules, units and hours
    in `WindowedInventoryCalls`."""

    def __init__(
        self, inventory: Inventory, settings: BookingSettings, pages: pagination.PageTokens
    ) -> None:
        self._inventory = inventory
        self._windows = inventory.windows
        self._limits = BookingLimits.from_settings(settings)
        self._pages = pages

    async def CreateResource(
        self, request: inventory_pb2.CreateResourceRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.CreateResourceResponse:
        tenant = current_tenant()
        v = Violations()
        name = v.text("name", request.name, max_length=MAX_TEXT)
        if request.time_zone not in _time_zones():
            v.add("time_zone", "must be an IANA time zone name, e.g. Europe/Lisbon")
        if not request.HasField("price"):
            v.add("price", "is required")
        currency = v.currency("price.currency_code", request.price.currency_code)
        v.int_range("price.amount_minor", request.price.amount_minor, 0, MAX_PRICE_MINOR)
        v.int_range("default_capacity", request.default_capacity, 0, MAX_CAPACITY)
        terms = _window_terms(v, request)
        key = request_key(v, "CreateResource", request)
        v.raise_if_any()
        new = NewResource(
            name=name.strip(),
            time_zone=request.time_zone,
            price_minor=request.price.amount_minor,
            currency=currency,
            default_capacity=request.default_capacity,
        )
        return await self._inventory.create_resource(
            tenant, new, IdempotentCall(key, convert.CREATE_RESOURCE), current_actor(), terms
        )

    async def GetResource(
        self, request: inventory_pb2.GetResourceRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.GetResourceResponse:
        tenant = current_tenant()
        resource_id = parse_id("resource_id", request.resource_id)
        resource = await self._inventory.get_resource(tenant, resource_id)
        return inventory_pb2.GetResourceResponse(resource=convert.resource(resource))

    async def ListResources(
        self, request: inventory_pb2.ListResourcesRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.ListResourcesResponse:
        tenant = current_tenant()
        v = Violations()
        size = pagination.page_size(v, request.page_size)
        after = self._pages.decode(v, request.page_token, "ListResources", tenant)
        v.raise_if_any()
        found = await self._inventory.list_resources(tenant, after, size + 1)
        page, token = self._pages.split_page(
            found,
            size,
            lambda r: pagination.Cursor(r.created_at, str(r.id)),
            "ListResources",
            tenant,
        )
        return inventory_pb2.ListResourcesResponse(
            resources=[convert.resource(r) for r in page], next_page_token=token
        )

    async def CreateSlots(
        self, request: inventory_pb2.CreateSlotsRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.CreateSlotsResponse:
        tenant = current_tenant()
        v = Violations()
        resource_id = v.uuid("resource_id", request.resource_id)
        limit = self._limits.max_slots_per_request
        check_count(v, "slots", len(request.slots), limit, "slot")
        new_slots: list[NewSlot] = []
        for i, spec in enumerate(request.slots[:limit]):
            window = checked_time_range(v, f"slots[{i}].time_range", spec.time_range)
            capacity = spec.capacity if spec.HasField("capacity") else None
            if capacity is not None:
                v.int_range(f"slots[{i}].capacity", capacity, 0, MAX_CAPACITY)
            if window:
                new_slots.append(NewSlot(window[0], window[1], capacity))
        check_each_once(v, "slots", [(s.starts_at, s.ends_at) for s in new_slots], "time range")
        key = request_key(v, "CreateSlots", request)
        v.raise_if_any()
        assert resource_id is not None
        return await self._inventory.create_slots(
            tenant,
            resource_id,
            new_slots,
            IdempotentCall(key, convert.CREATE_SLOTS),
            current_actor(),
        )

    async def ListSlots(
        self, request: inventory_pb2.ListSlotsRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.ListSlotsResponse:
        tenant = current_tenant()
        v = Violations()
        resource_id = v.uuid("resource_id", request.resource_id)
        window = None
        if request.HasField("time_range"):
            window = checked_time_range(v, "time_range", request.time_range)
        size = pagination.page_size(v, request.page_size)
        filters = [tenant, str(resource_id), str(window)]
        after = self._pages.decode(v, request.page_token, "ListSlots", filters)
        v.raise_if_any()
        assert resource_id is not None
        found = await self._inventory.list_slots(tenant, resource_id, window, after, size + 1)
        page, token = self._pages.split_page(
            found, size, lambda s: pagination.Cursor(s.starts_at, str(s.id)), "ListSlots", filters
        )
        return inventory_pb2.ListSlotsResponse(
            slots=[convert.slot(s) for s in page], next_page_token=token
        )

    async def UpdateSlotCapacity(
        self, request: inventory_pb2.UpdateSlotCapacityRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.UpdateSlotCapacityResponse:
        tenant = current_tenant()
        v = Violations()
        slot_id = v.uuid("slot_id", request.slot_id)
        v.int_range("capacity", request.capacity, 0, MAX_CAPACITY)
        v.raise_if_any()
        assert slot_id is not None
        slot = await self._inventory.update_capacity(
            tenant, slot_id, request.capacity, current_actor()
        )
        return inventory_pb2.UpdateSlotCapacityResponse(slot=convert.slot(slot))

    async def CloseSlot(
        self, request: inventory_pb2.CloseSlotRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.CloseSlotResponse:
        tenant = current_tenant()
        slot_id = parse_id("slot_id", request.slot_id)
        slot = await self._inventory.set_closed(tenant, slot_id, True, current_actor())
        return inventory_pb2.CloseSlotResponse(slot=convert.slot(slot))

    async def ReopenSlot(
        self, request: inventory_pb2.ReopenSlotRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.ReopenSlotResponse:
        tenant = current_tenant()
        slot_id = parse_id("slot_id", request.slot_id)
        slot = await self._inventory.set_closed(tenant, slot_id, False, current_actor())
        return inventory_pb2.ReopenSlotResponse(slot=convert.slot(slot))
