"""Browsing: the tenant's resources and what is free in a window."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request, Response

from gateway import convert, etags, models
from gateway.auth import Principal
from gateway.context import Gateway, gateway_from, gateway_of, requires
from gateway.routes.common import (
    ERRORS,
    RESOURCE_ID,
    Cursor,
    PageSize,
    WindowEnd,
    WindowStart,
    deadline,
    link,
    linked,
    v1_router,
)
from holdfast.contracts.availability.v1 import availability_pb2
from holdfast.contracts.booking.v1 import inventory_pb2
from holdfast.platform.proto_time import time_range

router = v1_router()


@router.get("/resources", response_model=models.ResourceList, responses=ERRORS)
async def list_resources(
    gw: Annotated[Gateway, Depends(gateway_of)],
    who: Annotated[Principal, Depends(requires("availability:read"))],
    page_size: PageSize = 50,
    cursor: Cursor = None,
) -> models.ResourceList:
    answer = await gw.downstream.inventory.ListResources(
        inventory_pb2.ListResourcesRequest(page_size=page_size, page_token=cursor or ""),
        metadata=gw.metadata(who),
        timeout=deadline(gw),
    )
    return models.ResourceList(
        items=[convert.resource(r) for r in answer.resources],
        next_cursor=answer.next_page_token or None,
    )


@router.get(
    "/resources/{resource_id}",
    response_model=models.Resource,
    responses=linked(
        200,
        "The resource",
        create_slots=link("create_slots", resource_id=RESOURCE_ID),
        get_availability=link("get_availability", resource_id=RESOURCE_ID),
    ),
)
async def get_resource(
    resource_id: uuid.UUID,
    gw: Annotated[Gateway, Depends(gateway_of)],
    who: Annotated[Principal, Depends(requires("availability:read"))],
) -> models.Resource:
    answer = await gw.downstream.inventory.GetResource(
        inventory_pb2.GetResourceRequest(resource_id=str(resource_id)),
        metadata=gw.metadata(who),
        timeout=deadline(gw),
    )
    return convert.resource(answer.resource)


async def read_availability(
    gw: Gateway,
    who: Principal,
    resource_id: uuid.UUID,
    start: datetime,
    end: datetime,
    including: str = "",
) -> models.Availability:
    """`including`: a change message the answer must reflect (see the stream)."""
    answer = await gw.downstream.availability.GetAvailability(
        availability_pb2.GetAvailabilityRequest(
            resource_id=str(resource_id),
            time_range=time_range(start, end),
            min_change_id=including,
        ),
        metadata=gw.metadata(who),
        timeout=deadline(gw),
    )
    return convert.availability(answer.availability)


@router.get(
    "/resources/{resource_id}/availability",
    response_model=models.Availability,
    responses={**ERRORS, 304: {"description": "Not modified: `If-None-Match` names the answer"}},
)
async def get_availability(
    resource_id: uuid.UUID,
    start: WindowStart,
    end: WindowEnd,
    request: Request,
    response: Response,
    who: Annotated[Principal, Depends(requires("availability:read"))],
) -> Response:
    """Every slot starting in [start, end) with what is free; at most 62 days.

    The answer carries an `ETag` while the gateway follows the availability
    changes; send it back as `If-None-Match` to get 304 Not Modified, quickly,
    until anything about the resource changes. Until then the gateway also
    serves a plain read of the same window from the answer it last sent."""
    # The gateway from the request, not a dependency: each one FastAPI
    # solves costs CPU on every request of the API's busiest route.
    gw = gateway_from(request)
    limits = response.headers  # the rate limits', set by the dependency
    recalled = etags.recall(
        gw.hub.changes,
        gw.answers,
        who.tenant,
        str(resource_id),
        start,
        end,
        request.headers.get("if-none-match"),
    )
    if recalled.answered:
        return recalled.response(limits)
    answer = await gw.downstream.availability.GetAvailability(
        availability_pb2.GetAvailabilityRequest(
            resource_id=str(resource_id),
            time_range=time_range(start, end),
            # The answer reflects at least the change the tag names.
            min_change_id=etags.change_to_include(recalled.version),
        ),
        metadata=gw.metadata(who),
        timeout=deadline(gw),
    )
    body = convert.availability_json(answer.availability)
    if recalled.tag is not None:
        gw.answers.put(recalled.tag, body)
    return etags.json_answer(body, recalled.tag, limits)
