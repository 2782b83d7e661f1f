"""The operator's inventory: resources, their slots, and each slot's
capacity and whether it takes holds (scope `inventory:admin`)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from gateway import convert, models, window_models
from gateway.auth import Principal
from gateway.context import Gateway, gateway_of, requires
from gateway.convert_windows import named_as_sent, rules_message
from gateway.routes.common import ERRORS, RESOURCE_ID, deadline, link, linked, v1_router
from holdfast.contracts.booking.v1 import inventory_pb2
from holdfast.contracts.common.v1 import money_pb2
from holdfast.platform.proto_time import time_range

router = v1_router()


@router.post(
    "/resources",
    status_code=201,
    response_model=models.Resource,
    responses=linked(
        201,
        "The resource made",
        get_resource=link("get_resource", resource_id=RESOURCE_ID),
        create_slots=link("create_slots", resource_id=RESOURCE_ID),
        get_availability=link("get_availability", resource_id=RESOURCE_ID),
        stream_availability=link("stream_availability", resource_id=RESOURCE_ID),
        list_bookings=link("list_bookings", resource_id=RESOURCE_ID),
    ),
)
async def create_resource(
    body: window_models.ResourceCreate,
    gw: Annotated[Gateway, Depends(gateway_of)],
    who: Annotated[Principal, Depends(requires("inventory:admin"))],
) -> models.Resource:
    """A slotted resource, or a windowed one with its `window_rules`."""
    request = inventory_pb2.CreateResourceRequest(
        name=body.name,
        time_zone=body.time_zone,
        price=money_pb2.Money(
            currency_code=body.price.currency, amount_minor=body.price.amount_minor
        ),
        default_capacity=body.default_capacity,
        kind=inventory_pb2.ResourceKind.Value(f"RESOURCE_KIND_{body.kind.upper()}"),
    )
    if body.window_rules is not None:
        request.window_rules.CopyFrom(rules_message(body.window_rules))
    answer = await named_as_sent(
        gw.downstream.inventory.CreateResource(
            request, metadata=gw.metadata(who), timeout=deadline(gw)
        )
    )
    return convert.resource(answer.resource)


@router.post(
    "/resources/{resource_id}/slots",
    status_code=201,
    response_model=models.SlotList,
    responses=linked(
        201,
        "The slots made, in the order asked",
        create_hold=link(
            "create_hold",
            body={
                "resource_id": "$request.path.resource_id",
                "slot_ids": ["$response.body#/items/0/id"],
                "quantity": 1,
            },
        ),
        update_capacity=link("update_capacity", slot_id="$response.body#/items/0/id"),
        close_slot=link("close_slot", slot_id="$response.body#/items/0/id"),
        reopen_slot=link("reopen_slot", slot_id="$response.body#/items/0/id"),
        get_availability=link("get_availability", resource_id="$request.path.resource_id"),
    ),
)
async def create_slots(
    resource_id: uuid.UUID,
    body: models.SlotsCreate,
    gw: Annotated[Gateway, Depends(gateway_of)],
    who: Annotated[Principal, Depends(requires("inventory:admin"))],
) -> models.SlotList:
    answer = await gw.downstream.inventory.CreateSlots(
        inventory_pb2.CreateSlotsRequest(
            resource_id=str(resource_id),
            slots=[
                # None leaves capacity unset (the resource's default); 0 is 0.
                inventory_pb2.SlotSpec(time_range=time_range(s.start, s.end), capacity=s.capacity)
                for s in body.slots
            ],
        ),
        metadata=gw.metadata(who),
        timeout=deadline(gw),
    )
    return models.SlotList(items=[convert.slot(s) for s in answer.slots])


@router.patch("/slots/{slot_id}", response_model=models.Slot, responses=ERRORS)
async def update_capacity(
    slot_id: uuid.UUID,
    body: models.CapacityUpdate,
    gw: Annotated[Gateway, Depends(gateway_of)],
    who: Annotated[Principal, Depends(requires("inventory:admin"))],
) -> models.Slot:
    """Never below what is held plus booked (409 otherwise)."""
    answer = await gw.downstream.inventory.UpdateSlotCapacity(
        inventory_pb2.UpdateSlotCapacityRequest(slot_id=str(slot_id), capacity=body.capacity),
        metadata=gw.metadata(who),
        timeout=deadline(gw),
    )
    return convert.slot(answer.slot)


@router.post("/slots/{slot_id}/close", response_model=models.Slot, responses=ERRORS)
async def close_slot(
    slot_id: uuid.UUID,
    gw: Annotated[Gateway, Depends(gateway_of)],
    who: Annotated[Principal, Depends(requires("inventory:admin"))],
) -> models.Slot:
    """A closed slot takes no new holds; its holds and bookings stay."""
    closed = await gw.downstream.inventory.CloseSlot(
        inventory_pb2.CloseSlotRequest(slot_id=str(slot_id)),
        metadata=gw.metadata(who),
        timeout=deadline(gw),
    )
    return convert.slot(closed.slot)


@router.post("/slots/{slot_id}/reopen", response_model=models.Slot, responses=ERRORS)
async def reopen_slot(
    slot_id: uuid.UUID,
    gw: Annotated[Gateway, Depends(gateway_of)],
    who: Annotated[Principal, Depends(requires("inventory:admin"))],
) -> models.Slot:
    reopened = await gw.downstream.inventory.ReopenSlot(
        inventory_pb2.ReopenSlotRequest(slot_id=str(slot_id)),
        metadata=gw.metadata(who),
        timeout=deadline(gw),
    )
    return convert.slot(reopened.slot)
