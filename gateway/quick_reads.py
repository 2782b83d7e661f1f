"""Slot-availability reads that the gateway answers from memory (a 304, or an
unchanged answer it kept: gateway.etags), served in front of FastAPI's
routing and dependency solving, which were two thirds of such a read's CPU.

A read is answered here only when memory is all it needs: the canonical
path with exactly `start` and `end`, each a valid instant; a key checked a
moment ago (Authenticator.cached_principal) with the `availability:read`
scope; and an answer the caller already has or the gateway kept
(gateway.etags.recall). Only then are its rate limits counted, by the same
checks as the route's dependency, so a read passed on is never counted
twice. Anything else goes on to the app untouched, where the route
(gateway.routes.resources.get_availability, the documented one) answers it
the same way or asks the availability service.

It sits inside the edge (request id, body limit, metrics, access log), the
server span and CORS, so its answers carry all of those as the route's do.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime
from urllib.parse import parse_qsl

from pydantic import TypeAdapter, ValidationError
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway import etags, models
from gateway.auth import Principal
from gateway.context import Gateway, both_limits
from gateway.problems import ProblemError, problem
from gateway.routes.resources import get_availability, router
from holdfast.platform.context import current_correlation_id

_PATH = re.compile(
    r"/v1/resources/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/availability"
)
# The route's own parsing of `start` and `end`, so that the tag is the same.
_INSTANT: TypeAdapter[datetime] = TypeAdapter(models.Instant)
_SCOPE = "availability:read"
# The route these reads are, for the edge's metrics and access log.
_ROUTE: BaseRoute = next(
    r for r in router.routes if getattr(r, "endpoint", None) is get_availability
)


class QuickReads:
    """ASGI middleware: answers the reads described above, passes on the rest."""

    def __init__(self, app: ASGIApp, gateway: Gateway) -> None:
        self._app = app
        self._gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        known = _recall(self._gateway, scope) if scope["type"] == "http" else None
        if known is None:
            await self._app(scope, receive, send)
            return
        who, recalled = known
        scope["route"] = _ROUTE
        client = scope.get("client")
        try:
            limits = await self._gateway.limit(
                both_limits(self._gateway, client[0] if client else None, who)
            )
        except ProblemError as error:
            await problem(error, current_correlation_id())(scope, receive, send)
            return
        await recalled.response(limits)(scope, receive, send)


def _recall(gw: Gateway, scope: Scope) -> tuple[Principal, etags.Recalled] | None:
    """The caller and what memory answers, if it answers this read."""
    if scope["method"] != "GET":
        return None
    path = _PATH.fullmatch(scope["path"])
    window = _window(scope["query_string"]) if path else None
    if path is None or window is None:
        return None
    # The first of each, as the route reads them.
    authorization = if_none_match = None
    for name, value in scope["headers"]:
        if name == b"authorization" and authorization is None:
            authorization = value.decode("latin-1")
        elif name == b"if-none-match" and if_none_match is None:
            if_none_match = value.decode("latin-1")
    who = gw.auth.cached_principal(authorization)
    if who is None or _SCOPE not in who.scopes:
        return None
    recalled = etags.recall(gw.hub.changes, gw.answers, who.tenant, path[1], *window, if_none_match)
    return (who, recalled) if recalled.answered else None


def _window(query_string: bytes) -> tuple[datetime, datetime] | None:
    """`start` and `end`, each once and nothing else, as the route parses them."""
    if len(query_string) > _REMEMBERED_QUERY_BYTES:
        return _parse_window(query_string)
    return _remembered_window(query_string)


def _parse_window(query_string: bytes) -> tuple[datetime, datetime] | None:
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    values = dict(pairs)
    if len(pairs) != 2 or values.keys() != {"start", "end"}:
        return None
    try:
        return _INSTANT.validate_python(values["start"]), _INSTANT.validate_python(values["end"])
    except ValidationError:
        return None


# Pollers send the same query again and again, and parsing it (percent-
# decoding above all) was a tenth of a quick read: the latest are remembered,
# if of a window's usual size (~70 bytes), so memory stays bounded.
_REMEMBERED_QUERY_BYTES = 256
_remembered_window = functools.lru_cache(maxsize=4096)(_parse_window)
