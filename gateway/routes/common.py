"""What the `/v1` routes share: the documented errors and links, the query
parameters several take, and the deadline of a downstream call."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from gateway import models
from gateway.context import Gateway


def v1_router() -> APIRouter:
    """A resource's routes, under `/v1`. Operation ids are the functions'
    names: stable, and what links name. (The prefix is each router's own, not
    an enclosing one's: the route a request matched, which its metrics and
    spans are labelled with, then carries the whole path.)"""
    return APIRouter(prefix="/v1", generate_unique_id_function=lambda route: route.name)


PageSize = Annotated[int, Query(ge=1, le=500)]
Cursor = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=1024,
        pattern=r"^[A-Za-z0-9_-]+$",
        description=(
            "Opaque: the `next_cursor` of the previous page, passed back unchanged with the"
            " same filters. Anything else (changed, made up, from another list or filters)"
            " is a 400."
        ),
    ),
]
WindowStart = Annotated[
    models.Instant,
    Query(description=f"Slots starting at or after this. {models.INSTANT}"),
]
WindowEnd = Annotated[
    models.Instant,
    Query(
        description="Slots starting before this: after `start`, and at most 62 days after it"
        f" (422 otherwise). {models.INSTANT}"
    ),
]
ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": models.Problem, "description": description}
    for status, description in {
        400: "Malformed request",
        401: "Missing, malformed, unknown, expired or revoked API key",
        403: "The key lacks the route's scope",
        404: "No such thing for this tenant",
        409: "Conflicts with the current state (sold out, wrong state, reused key...)",
        413: "Body too large",
        422: "Invalid request; `errors` names each field",
        429: "Rate limited; see Retry-After",
        503: "A service is unavailable; retry",
        504: "A service did not answer in time; retry",
    }.items()
}


def linked(status: int, description: str, **links: dict[str, Any]) -> dict[int | str, Any]:
    """ERRORS, and the success answer's OpenAPI links: which operations take
    what it returns (a client, or a stateful fuzzer, follows them)."""
    return {**ERRORS, status: {"description": description, "links": links}}


def link(operation: str, **values: object) -> dict[str, Any]:
    """A link to `operation`: path and query parameters by name, `body` the
    request body, each a runtime expression or a constant."""
    body = values.pop("body", None)
    made: dict[str, Any] = {"operationId": operation, "parameters": values}
    if body is not None:
        made["requestBody"] = body
    return made


RESOURCE_ID = "$response.body#/id"
HOLD_ID = "$response.body#/id"


def deadline(gw: Gateway) -> float:
    return gw.settings.request_timeout_seconds
