"""Holds: take places for a while, look at them, give them back, pay."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Header
from google.protobuf.duration_pb2 import Duration

from gateway import convert, models
from gateway.auth import Principal
from gateway.context import Gateway, gateway_of, requires
from gateway.routes.common import ERRORS, HOLD_ID, deadline, link, linked, v1_router
from holdfast.contracts.booking.v1 import booking_pb2
from holdfast.platform.proto_time import time_range

router = v1_router()

_HOLD_LINKS = {
    "get_hold": link("get_hold", hold_id=HOLD_ID),
    "release_hold": link("release_hold", hold_id=HOLD_ID),
    "start_checkout": link("start_checkout", hold_id=HOLD_ID),
    "get_booking": link("get_booking", booking_id=HOLD_ID),
    "cancel_booking": link("cancel_booking", booking_id=HOLD_ID),
    "get_resource": link("get_resource", resource_id="$response.body#/resource_id"),
}


@router.post(
    "/holds",
    status_code=201,
    response_model=models.Hold,
    responses=linked(201, "The hold", **_HOLD_LINKS),
)
async def create_hold(
    body: models.HoldCreate,
    gw: Annotated[Gateway, Depends(gateway_of)],
    who: Annotated[Principal, Depends(requires("holds:write"))],
    idempotency_key: Annotated[
        str,
        Header(
            min_length=1,
            max_length=128,
            pattern=r"^[\x21-\x7e]+$",
            description="Required: the same key and body give the same hold again",
        ),
    ],
) -> models.Hold:
    """Slots and a quantity on a slotted resource, or a window with a party
    size and/or a unit on a windowed one."""
    request = booking_pb2.CreateHoldRequest(
        resource_id=str(body.resource_id),
        customer_ref=body.customer_ref,
        request_id=idempotency_key,
    )
    request.slot_ids.extend(str(s) for s in body.slot_ids)
    request.quantity = body.quantity or 0
    request.party_size = body.party_size or 0
    request.unit_id = str(body.unit_id) if body.unit_id else ""
    if body.window is not None:
        request.window.CopyFrom(time_range(body.window.start_time, body.window.end_time))
    if body.ttl_seconds is not None:
        ttl = Duration()
        ttl.FromTimedelta(timedelta(seconds=body.ttl_seconds))
        request.ttl.CopyFrom(ttl)
    answer = await gw.downstream.booking.CreateHold(
        request, metadata=gw.metadata(who), timeout=deadline(gw)
    )
    return convert.hold(answer.hold)


@router.get(
    "/holds/{hold_id}",
    response_model=models.Hold,
    responses=linked(200, "The hold", **_HOLD_LINKS),
)
async def get_hold(
    hold_id: uuid.UUID,
    gw: Annotated[Gateway, Depends(gateway_of)],
    who: Annotated[Principal, Depends(requires("holds:write"))],
) -> models.Hold:
    answer = await gw.downstream.booking.GetHold(
        booking_pb2.GetHoldRequest(hold_id=str(hold_id)),
        metadata=gw.metadata(who),
        timeout=deadline(gw),
    )
    return convert.hold(answer.hold)


@router.delete("/holds/{hold_id}", response_model=models.Hold, responses=ERRORS)
async def release_hold(
    hold_id: uuid.UUID,
    gw: Annotated[Gateway, Depends(gateway_of)],
    who: Annotated[Principal, Depends(requires("holds:write"))],
) -> models.Hold:
    """Gives the hold's places back; releasing again is harmless."""
    answer = await gw.downstream.booking.ReleaseHold(
        booking_pb2.ReleaseHoldRequest(hold_id=str(hold_id), reason="released by the customer"),
        metadata=gw.metadata(who),
        timeout=deadline(gw),
    )
    return convert.hold(answer.hold)


@router.post("/holds/{hold_id}/checkout", response_model=models.Checkout, responses=ERRORS)
async def start_checkout(
    hold_id: uuid.UUID,
    gw: Annotated[Gateway, Depends(gateway_of)],
    who: Annotated[Principal, Depends(requires("holds:write"))],
    body: models.CheckoutCreate | None = None,
) -> models.Checkout:
    """The Stripe Checkout page to send the customer to (the same while open)."""
    answer = await gw.downstream.booking.StartCheckout(
        booking_pb2.StartCheckoutRequest(
            hold_id=str(hold_id),
            success_url=(body.success_url or "") if body else "",
            cancel_url=(body.cancel_url or "") if body else "",
        ),
        metadata=gw.metadata(who),
        timeout=deadline(gw) + gw.settings.request_timeout_seconds,  # Stripe is called
    )
    return convert.checkout(answer.checkout)
