"""What a windowed resource (tables, rooms, rentals) has free: the start
times a party can book for a duration, and each fitting unit's free hours."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated

from fastapi import Depends, Query

from gateway import convert, models
from gateway.auth import Principal
from gateway.context import Gateway, gateway_of, requires
from gateway.routes.common import ERRORS, deadline, v1_router
from holdfast.contracts.availability.v1 import availability_pb2

router = v1_router()

# What a protobuf Duration holds, in minutes (10,000 years).
_MAX_MINUTES = 315_576_000_000 // 60


@dataclass(frozen=True)
class WindowQuery:
    """The window availability asked for; the same for a read and a stream."""

    first_date: date
    last_date: date
    party_size: int
    duration_minutes: int | None

    @property
    def key(self) -> str:
        """Names the query among a resource's (the stream's shared reads)."""
        return f"{self.first_date}:{self.last_date}:{self.party_size}:{self.duration_minutes}"


def window_query(
    first_date: Annotated[
        date,
        Query(
            description="The first local date (YYYY-MM-DD) in the resource's time zone",
            examples=["2031-06-01"],
        ),
    ],
    last_date: Annotated[
        date,
        Query(
            description="The last local date, included: not before `first_date`, and at most"
            " 62 days in all; both within 1971-01-01 and 2105-12-31 (422 otherwise)",
            examples=["2031-06-02"],
        ),
    ],
    party_size: Annotated[
        int, Query(ge=1, le=2**31 - 1, description="Units smaller than the party are left out")
    ] = 1,
    duration: Annotated[
        int | None,
        Query(
            ge=1,
            le=_MAX_MINUTES,
            description="The window length in minutes, within the resource's minimum and"
            " maximum duration (422 otherwise); the minimum when left out",
        ),
    ] = None,
) -> WindowQuery:
    return WindowQuery(first_date, last_date, party_size, duration)


WindowQueryParameters = Annotated[WindowQuery, Depends(window_query)]


async def read_window_availability(
    gw: Gateway,
    who: Principal,
    resource_id: uuid.UUID,
    query: WindowQuery,
    including: str = "",
) -> models.WindowAvailability:
    """`including`: a change message the answer must reflect (see the stream)."""
    request = availability_pb2.GetWindowAvailabilityRequest(
        resource_id=str(resource_id),
        first_date=query.first_date.isoformat(),
        last_date=query.last_date.isoformat(),
        party_size=query.party_size,
        min_change_id=including,
    )
    if query.duration_minutes is not None:
        request.duration.FromTimedelta(timedelta(minutes=query.duration_minutes))
    answer = await gw.downstream.availability.GetWindowAvailability(
        request, metadata=gw.metadata(who), timeout=deadline(gw)
    )
    return convert.window_availability(answer.availability)


@router.get(
    "/resources/{resource_id}/window-availability",
    response_model=models.WindowAvailability,
    responses=ERRORS,
)
async def get_window_availability(
    resource_id: uuid.UUID,
    query: WindowQueryParameters,
    gw: Annotated[Gateway, Depends(gateway_of)],
    who: Annotated[Principal, Depends(requires("availability:read"))],
) -> models.WindowAvailability:
    """A windowed resource's bookable start times for a party and a duration
    on local dates, each with the unit a hold would get, and the free hours
    of every unit the party fits. 409 RESOURCE_NOT_WINDOWED for a resource
    sold in slots (ask `/availability`)."""
    return await read_window_availability(gw, who, resource_id, query)
