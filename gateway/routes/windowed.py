"""Windowed resources' setup: window rules, units and opening hours (scope
`inventory:admin`; reading the setup, `availability:read`). Durations are
whole minutes (`..._minutes`); see gateway/window_models.py."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Header, Path

from gateway import window_models as wm
from gateway.auth import Principal
from gateway.context import Gateway, gateway_of, requires
from gateway.convert_windows import (
    hours,
    named_as_sent,
    ranges_message,
    rules,
    rules_message,
    setup,
    unit,
    weekday_message,
)
from gateway.routes.common import ERRORS, deadline, link, linked, v1_router
from holdfast.contracts.booking.v1 import inventory_pb2

router = v1_router()

Admin = Annotated[Principal, Depends(requires("inventory:admin"))]
Gw = Annotated[Gateway, Depends(gateway_of)]
Day = Annotated[str, Path(pattern=wm.DATE, description='A local date, "YYYY-MM-DD"')]
UNIT_ID = "$response.body#/id"
_UNIT_LINKS = {
    "update_unit": link("update_unit", unit_id=UNIT_ID),
    "retire_unit": link("retire_unit", unit_id=UNIT_ID),
    "restore_unit": link("restore_unit", unit_id=UNIT_ID),
}


@router.put(
    "/resources/{resource_id}/window-rules", response_model=wm.WindowRules, responses=ERRORS
)
async def set_window_rules(
    resource_id: uuid.UUID, body: wm.WindowRules, gw: Gw, who: Admin
) -> wm.WindowRules:
    """Replaces the rules; a slotted resource without slots becomes windowed
    (one with slots: 409)."""
    answer = await named_as_sent(
        gw.downstream.inventory.SetWindowRules(
            inventory_pb2.SetWindowRulesRequest(
                resource_id=str(resource_id), rules=rules_message(body)
            ),
            metadata=gw.metadata(who),
            timeout=deadline(gw),
        ),
        {"rules": ""},
    )
    return rules(answer.rules)


@router.get(
    "/resources/{resource_id}/window-setup", response_model=wm.WindowSetup, responses=ERRORS
)
async def get_window_setup(
    resource_id: uuid.UUID,
    gw: Gw,
    who: Annotated[Principal, Depends(requires("availability:read"))],
) -> wm.WindowSetup:
    """The rules, units (retired ones too) and opening hours; a slotted resource: 409."""
    answer = await gw.downstream.inventory.GetWindowSetup(
        inventory_pb2.GetWindowSetupRequest(resource_id=str(resource_id)),
        metadata=gw.metadata(who),
        timeout=deadline(gw),
    )
    return setup(answer)


@router.post(
    "/resources/{resource_id}/units",
    status_code=201,
    response_model=wm.Unit,
    responses=linked(201, "The unit", **_UNIT_LINKS),
)
async def create_unit(
    resource_id: uuid.UUID,
    body: wm.UnitCreate,
    gw: Gw,
    who: Admin,
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=128,
            pattern=r"^[\x21-\x7e]+$",
            description="Optional: the same key and body give the same unit again",
        ),
    ] = None,
) -> wm.Unit:
    """A name another unit of the resource has: 409 UNIT_EXISTS."""
    answer = await gw.downstream.inventory.CreateUnit(
        inventory_pb2.CreateUnitRequest(
            resource_id=str(resource_id),
            name=body.name,
            size=body.size,
            request_id=idempotency_key or "",
        ),
        metadata=gw.metadata(who),
        timeout=deadline(gw),
    )
    return unit(answer.unit)


@router.patch(
    "/units/{unit_id}", response_model=wm.Unit, responses=linked(200, "The unit", **_UNIT_LINKS)
)
async def update_unit(unit_id: uuid.UUID, body: wm.UnitUpdate, gw: Gw, who: Admin) -> wm.Unit:
    """Renames and/or resizes; its holds and bookings stay."""
    request = inventory_pb2.UpdateUnitRequest(unit_id=str(unit_id))
    if body.name is not None:
        request.name = body.name
    if body.size is not None:
        request.size = body.size
    answer = await gw.downstream.inventory.UpdateUnit(
        request, metadata=gw.metadata(who), timeout=deadline(gw)
    )
    return unit(answer.unit)


@router.post("/units/{unit_id}/retire", response_model=wm.Unit, responses=ERRORS)
async def retire_unit(unit_id: uuid.UUID, gw: Gw, who: Admin) -> wm.Unit:
    """A retired unit takes no new holds; its holds and bookings stay."""
    answer = await gw.downstream.inventory.RetireUnit(
        inventory_pb2.RetireUnitRequest(unit_id=str(unit_id)),
        metadata=gw.metadata(who),
        timeout=deadline(gw),
    )
    return unit(answer.unit)


@router.post("/units/{unit_id}/restore", response_model=wm.Unit, responses=ERRORS)
async def restore_unit(unit_id: uuid.UUID, gw: Gw, who: Admin) -> wm.Unit:
    answer = await gw.downstream.inventory.RestoreUnit(
        inventory_pb2.RestoreUnitRequest(unit_id=str(unit_id)),
        metadata=gw.metadata(who),
        timeout=deadline(gw),
    )
    return unit(answer.unit)


@router.put("/resources/{resource_id}/hours", response_model=wm.OpeningHours, responses=ERRORS)
async def set_weekly_hours(
    resource_id: uuid.UUID, body: wm.WeeklyHoursSet, gw: Gw, who: Admin
) -> wm.OpeningHours:
    """Replaces the weekly hours (a weekday left out is closed); dated exceptions stay."""
    weekly = [
        inventory_pb2.WeeklyHours(
            weekday=weekday_message(day.weekday), ranges=ranges_message(day.ranges)
        )
        for day in body.weekly
    ]
    answer = await named_as_sent(
        gw.downstream.inventory.SetWeeklyHours(
            inventory_pb2.SetWeeklyHoursRequest(resource_id=str(resource_id), weekly=weekly),
            metadata=gw.metadata(who),
            timeout=deadline(gw),
        )
    )
    return hours(answer.hours)


@router.put(
    "/resources/{resource_id}/hours/exceptions/{date}",
    response_model=wm.OpeningHours,
    responses=ERRORS,
)
async def set_hours_exception(
    resource_id: uuid.UUID, date: Day, body: wm.HoursExceptionSet, gw: Gw, who: Admin
) -> wm.OpeningHours:
    """The date's own hours; no ranges: closed that day."""
    exception = inventory_pb2.HoursException(date=date, ranges=ranges_message(body.ranges))
    answer = await named_as_sent(
        gw.downstream.inventory.SetHoursException(
            inventory_pb2.SetHoursExceptionRequest(
                resource_id=str(resource_id), exception=exception
            ),
            metadata=gw.metadata(who),
            timeout=deadline(gw),
        ),
        {"exception.date": "path.date", "exception": ""},
    )
    return hours(answer.hours)


@router.delete(
    "/resources/{resource_id}/hours/exceptions/{date}",
    response_model=wm.OpeningHours,
    responses=ERRORS,
)
async def clear_hours_exception(
    resource_id: uuid.UUID, date: Day, gw: Gw, who: Admin
) -> wm.OpeningHours:
    """The date follows the weekly hours again."""
    answer = await named_as_sent(
        gw.downstream.inventory.ClearHoursException(
            inventory_pb2.ClearHoursExceptionRequest(resource_id=str(resource_id), date=date),
            metadata=gw.metadata(who),
            timeout=deadline(gw),
        ),
        {"date": "path.date"},
    )
    return hours(answer.hours)
