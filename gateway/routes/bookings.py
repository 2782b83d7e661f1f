"""Bookings: list them, look at one, cancel it (and refund)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Query

from gateway import convert, models
from gateway.auth import Principal
from gateway.context import Gateway, gateway_of, requires
from gateway.routes.common import ERRORS, Cursor, PageSize, deadline, v1_router
from holdfast.contracts.booking.v1 import booking_pb2

router = v1_router()


@router.get("/bookings", response_model=models.HoldList, responses=ERRORS)
async def list_bookings(
    gw: Annotated[Gateway, Depends(gateway_of)],
    who: Annotated[Principal, Depends(requires("bookings:read"))],
    status: Annotated[list[models.HoldStatus] | None, Query()] = None,
    resource_id: uuid.UUID | None = None,
    page_size: PageSize = 50,
    cursor: Cursor = None,
) -> models.HoldList:
    """Holds and bookings, newest first; `status` may repeat."""
    answer = await gw.downstream.booking.ListBookings(
        booking_pb2.ListBookingsRequest(
            page_size=page_size,
            page_token=cursor or "",
            statuses=[
                booking_pb2.HoldStatus.Value(f"HOLD_STATUS_{s.upper()}") for s in status or []
            ],
            resource_id=str(resource_id) if resource_id else "",
        ),
        metadata=gw.metadata(who),
        timeout=deadline(gw),
    )
    return models.HoldList(
        items=[convert.hold(b) for b in answer.bookings], next_cursor=answer.next_page_token or None
    )


@router.get("/bookings/{booking_id}", response_model=models.Hold, responses=ERRORS)
async def get_booking(
    booking_id: uuid.UUID,
    gw: Annotated[Gateway, Depends(gateway_of)],
    who: Annotated[Principal, Depends(requires("bookings:read"))],
) -> models.Hold:
    answer = await gw.downstream.booking.GetBooking(
        booking_pb2.GetBookingRequest(booking_id=str(booking_id)),
        metadata=gw.metadata(who),
        timeout=deadline(gw),
    )
    return convert.hold(answer.booking)


@router.post(
    "/bookings/{booking_id}/cancel", response_model=models.CancelledBooking, responses=ERRORS
)
async def cancel_booking(
    booking_id: uuid.UUID,
    gw: Annotated[Gateway, Depends(gateway_of)],
    who: Annotated[Principal, Depends(requires("bookings:write"))],
    body: models.Cancel | None = None,
) -> models.CancelledBooking:
    """Cancels a booking, its places come back; its payment is refunded in
    full at Stripe unless `refund` is `none`. Cancelling again is harmless."""
    keep_payment = body is not None and body.refund == "none"
    answer = await gw.downstream.booking.CancelBooking(
        booking_pb2.CancelBookingRequest(
            booking_id=str(booking_id),
            reason=body.reason if body else "",
            refund=booking_pb2.REFUND_MODE_NONE if keep_payment else booking_pb2.REFUND_MODE_FULL,
        ),
        metadata=gw.metadata(who),
        timeout=deadline(gw) + gw.settings.request_timeout_seconds,  # Stripe is called
    )
    return convert.cancelled(answer)
