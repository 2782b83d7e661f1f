"""InventoryService's windowed-resource calls: window rules, units and
opening hours, proto in and out (the reading and its checks are
`services.booking.convert_windows`). `InventoryHandler` takes them in."""

from __future__ import annotations

from datetime import date

import grpc

from holdfast.contracts.booking.v1 import inventory_pb2
from holdfast.platform.context import current_actor, current_tenant
from holdfast.platform.validation import Violations, parse_id
from holdfast.scheduling.hours import OpeningRange
from services.booking import convert_windows as cw
from services.booking.handlers.request_keys import request_key
from services.booking.idempotency import IdempotentCall
from services.booking.windowed_inventory import WindowedInventory


class WindowedInventoryCalls:
    """The windowed half of the InventoryService servicer."""

    _windows: WindowedInventory

    async def SetWindowRules(
        self, request: inventory_pb2.SetWindowRulesRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.SetWindowRulesResponse:
        tenant = current_tenant()
        v = Violations()
        resource_id = v.uuid("resource_id", request.resource_id)
        terms = None
        if request.HasField("rules"):
            terms = cw.read_terms(v, "rules", request.rules)
        else:
            v.add("rules", "is required")
        v.raise_if_any()
        assert resource_id is not None
        assert terms is not None
        done = await self._windows.set_rules(tenant, resource_id, terms, current_actor())
        return inventory_pb2.SetWindowRulesResponse(rules=cw.terms_message(done))

    async def GetWindowSetup(
        self, request: inventory_pb2.GetWindowSetupRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.GetWindowSetupResponse:
        tenant = current_tenant()
        resource_id = parse_id("resource_id", request.resource_id)
        return cw.setup_message(await self._windows.setup(tenant, resource_id))

    async def CreateUnit(
        self, request: inventory_pb2.CreateUnitRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.CreateUnitResponse:
        tenant = current_tenant()
        v = Violations()
        resource_id = v.uuid("resource_id", request.resource_id)
        name = cw.read_unit_name(v, "name", request.name)
        size = cw.read_unit_size(v, "size", request.size)
        key = request_key(v, "CreateUnit", request)
        v.raise_if_any()
        assert resource_id is not None
        call = IdempotentCall(key, cw.CREATE_UNIT)
        return await self._windows.create_unit(
            tenant, resource_id, name, size, call, current_actor()
        )

    async def UpdateUnit(
        self, request: inventory_pb2.UpdateUnitRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.UpdateUnitResponse:
        tenant = current_tenant()
        v = Violations()
        unit_id = v.uuid("unit_id", request.unit_id)
        name = cw.read_unit_name(v, "name", request.name) if request.HasField("name") else None
        size = cw.read_unit_size(v, "size", request.size) if request.HasField("size") else None
        v.raise_if_any()
        assert unit_id is not None
        unit = await self._windows.update_unit(tenant, unit_id, name, size, current_actor())
        return inventory_pb2.UpdateUnitResponse(unit=cw.unit_message(unit))

    async def RetireUnit(
        self, request: inventory_pb2.RetireUnitRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.RetireUnitResponse:
        tenant = current_tenant()
        unit_id = parse_id("unit_id", request.unit_id)
        unit = await self._windows.set_active(tenant, unit_id, False, current_actor())
        return inventory_pb2.RetireUnitResponse(unit=cw.unit_message(unit))

    async def RestoreUnit(
        self, request: inventory_pb2.RestoreUnitRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.RestoreUnitResponse:
        tenant = current_tenant()
        unit_id = parse_id("unit_id", request.unit_id)
        unit = await self._windows.set_active(tenant, unit_id, True, current_actor())
        return inventory_pb2.RestoreUnitResponse(unit=cw.unit_message(unit))

    async def SetWeeklyHours(
        self, request: inventory_pb2.SetWeeklyHoursRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.SetWeeklyHoursResponse:
        tenant = current_tenant()
        v = Violations()
        resource_id = v.uuid("resource_id", request.resource_id)
        weekly = cw.read_weekly(v, "weekly", request.weekly)
        v.raise_if_any()
        assert resource_id is not None
        hours = await self._windows.set_weekly_hours(tenant, resource_id, weekly, current_actor())
        return inventory_pb2.SetWeeklyHoursResponse(hours=cw.hours_message(hours))

    async def SetHoursException(
        self, request: inventory_pb2.SetHoursExceptionRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.SetHoursExceptionResponse:
        tenant = current_tenant()
        v = Violations()
        resource_id = v.uuid("resource_id", request.resource_id)
        day: date | None = None
        ranges: tuple[OpeningRange, ...] = ()
        if request.HasField("exception"):
            day = cw.read_date(v, "exception.date", request.exception.date)
            ranges = cw.read_ranges(v, "exception.ranges", request.exception.ranges)
        else:
            v.add("exception", "is required")
        v.raise_if_any()
        assert resource_id is not None
        assert day is not None
        hours = await self._windows.set_hours_exception(
            tenant, resource_id, day, ranges, current_actor()
        )
        return inventory_pb2.SetHoursExceptionResponse(hours=cw.hours_message(hours))

    async def ClearHoursException(
        self, request: inventory_pb2.ClearHoursExceptionRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.ClearHoursExceptionResponse:
        tenant = current_tenant()
        v = Violations()
        resource_id = v.uuid("resource_id", request.resource_id)
        day = cw.read_date(v, "date", request.date)
        v.raise_if_any()
        assert resource_id is not None
        assert day is not None
        hours = await self._windows.clear_hours_exception(tenant, resource_id, day, current_actor())
        return inventory_pb2.ClearHoursExceptionResponse(hours=cw.hours_message(hours))
