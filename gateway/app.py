"""The gateway's ASGI app: routes, the edge (request ids, body limit,
metrics, CORS) and one error format for everything (problem+json)."""

from __future__ import annotations

import collections
import logging
import time
from typing import Any

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import routes
from gateway.context import Gateway
from gateway.document import without_null_parameters
from gateway.methods import MethodTable
from gateway.problems import (
    PROBLEM_JSON,
    ProblemError,
    from_domain,
    from_grpc,
    invalid_argument_status,
    problem,
)
from gateway.quick_reads import QuickReads
from gateway.tracing import NATIVE_TELEMETRY_OFF, trace_requests
from holdfast.platform.context import (
    CORRELATION_ID_KEY,
    REQUEST_ID_KEY,
    correlation_id_from,
    current_correlation_id,
)
from holdfast.platform.errors import DomainError
from holdfast.platform.logging import access_log
from holdfast.platform.telemetry import correlation_scope

log = logging.getLogger(__name__)

_REQUEST_ID = REQUEST_ID_KEY.encode()
_CORRELATION_ID = CORRELATION_ID_KEY.encode()
_EDGE_HEADERS = frozenset({_REQUEST_ID, _CORRELATION_ID, b"content-length", b"transfer-encoding"})

# Probes and scrapes: neither logged per request nor traced.
_UNLOGGED_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})

# A caller's request id is taken if it can travel on unchanged: in gRPC
# metadata (ASCII only; a call with anything else never returned), headers
# and logs. Otherwise the request gets an id of its own.
UNEXPECTED = ProblemError(500, "INTERNAL", "something went wrong; quote the correlation id")

DESCRIPTION = """\
The HTTP/JSON API of holdfast: browse availability, hold places, pay through
Stripe Checkout, and manage bookings.

Authenticate with `Authorization: Bearer <API key>`; each key belongs to one
tenant and carries scopes. `POST /v1/holds` needs an `Idempotency-Key`.
Errors are `application/problem+json` (RFC 9457) with a machine-readable
`reason` and the request's `correlation_id`. Send `X-Request-Id` (up to 128
visible ASCII characters) to choose the correlation id; it is returned on
every response.
"""


class Edge:
    """Request id, body size limit, RED metrics and the last word on
    unexpected errors, around everything but CORS.

    An unexpected error is answered here rather than by Starlette's
    outermost error middleware, which runs after the request's correlation
    id is gone and would answer without it."""

    def __init__(self, app: ASGIApp, gateway: Gateway) -> None:
        self._app = app
        self._gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        # The first of each header it reads (ASGI names are lower case).
        wanted: dict[bytes, str] = {}
        for name, value in scope["headers"]:
            if name in _EDGE_HEADERS and name not in wanted:
                wanted[name] = value.decode("latin-1")
        correlation_id = correlation_id_from(wanted.get(_REQUEST_ID), wanted.get(_CORRELATION_ID))
        with correlation_scope(correlation_id):
            await self._serve(
                scope,
                receive,
                send,
                correlation_id,
                wanted.get(b"content-length"),
                has_body=b"content-length" in wanted or b"transfer-encoding" in wanted,
            )

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        correlation_id: str,
        declared_length: str | None,
        has_body: bool,
    ) -> None:
        started = time.perf_counter()
        status = 500
        responding = False
        limit = self._gateway.settings.max_body_bytes

        async def tagged_send(message: Message) -> None:
            nonlocal status, responding
            if message["type"] == "http.response.start":
                status, responding = message["status"], True
                message.setdefault("headers", [])
                message["headers"] = [
                    *[(k, v) for k, v in message["headers"] if k.lower() != b"x-request-id"],
                    (b"x-request-id", correlation_id.encode()),
                ]
            await send(message)

        try:
            if not has_body:  # RFC 9112: without a length or chunked coding, there is none
                await self._app(scope, receive, tagged_send)
                return
            declared = declared_length or ""
            # A declared length is refused before reading; a chunked body is
            # read ahead (it is small or refused), so that the refusal does
            # not depend on when, or whether, a route reads it.
            body = None
            if not (declared.isdigit() and int(declared) > limit):
                body = await _read_body(receive, limit)
            if body is None:
                response = problem(
                    ProblemError(413, "BODY_TOO_LARGE", f"the body exceeds {limit} bytes"),
                    correlation_id,
                )
                await response(scope, receive, tagged_send)
            else:
                await self._app(scope, _replay(body, receive), tagged_send)
        except Exception:
            if responding:  # too late for a problem: the connection is dropped
                raise
            log.exception("unexpected error on %s %s", scope["method"], scope["path"])
            await problem(UNEXPECTED, correlation_id)(scope, receive, tagged_send)
        finally:
            self._record(scope, status, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, elapsed: float) -> None:
        """The request in the RED metrics and the access log."""
        route = getattr(scope.get("route"), "path", "unmatched")
        metrics = self._gateway.metrics
        metrics.requests.labels(scope["method"], route, str(status)).inc()
        metrics.latency.labels(scope["method"], route).observe(elapsed)
        if route not in _UNLOGGED_ROUTES:
            access_log.info(
                "%s %s %s",
                scope["method"],
                route,
                status,
                extra={
                    "method": scope["method"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1e3, 2),
                },
            )


async def _read_body(receive: Receive, limit: int) -> list[Message] | None:
    """The request's body messages, read to the end; None past `limit` bytes."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":  # the client went away
            return messages
        size += len(message.get("body", b""))
        if size > limit:
            return None
        if not message.get("more_body", False):
            return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """`receive` for the app: the messages read ahead, then the live ones
    (a disconnect, for a streaming response)."""
    pending = collections.deque(messages)

    async def replayed() -> Message:
        return pending.popleft() if pending else await receive()

    return replayed


def _detail(item: Any) -> str:
    """What is wrong with one field: our validators' own words as they wrote
    them (pydantic puts "Value error, " before them), pydantic's otherwise."""
    cause = (item.get("ctx") or {}).get("error")
    if item.get("type") == "value_error" and isinstance(cause, ValueError):
        return str(cause)
    return str(item.get("msg"))


def _validation_problem(error: RequestValidationError) -> ProblemError:
    fields = []
    for item in error.errors():
        if item.get("type") == "json_invalid":
            return ProblemError(400, "MALFORMED_JSON", "the body is not valid JSON")
        location = [str(part) for part in item.get("loc", ()) if part != "body"]
        fields.append({"field": ".".join(location) or "body", "detail": _detail(item)})
    names = [f["field"] for f in fields]
    return ProblemError(
        invalid_argument_status(names),
        "INVALID_ARGUMENT",
        f"invalid request: {', '.join(names)}",
        errors=fields,
    )


def create_app(gateway: Gateway) -> FastAPI:
    app = FastAPI(
        title="holdfast",
        version="1.0.0",
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        telemetry=NATIVE_TELEMETRY_OFF,
    )
    app.state.gateway = gateway
    app.include_router(routes.router)
    _document_problems(app)
    _answer_errors(app, MethodTable(app.openapi))
    _add_probes(app, gateway)
    app.add_middleware(QuickReads, gateway=gateway)
    app.add_middleware(Edge, gateway=gateway)
    trace_requests(app, _UNLOGGED_ROUTES)
    _allow_origins(app, gateway)
    return app


def _answer_errors(app: FastAPI, methods: MethodTable) -> None:
    """Every error as problem+json: ours, the services', validation's,
    Starlette's (404, 405) and Redis's."""

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, error: ProblemError) -> JSONResponse:
        return problem(error, current_correlation_id())

    @app.exception_handler(grpc.aio.AioRpcError)
    async def _grpc(request: Request, error: grpc.aio.AioRpcError) -> JSONResponse:
        translated = from_grpc(error)
        if translated.status >= 500:
            log.warning("downstream failure on %s: %s", request.url.path, error.code().name)
        return problem(translated, current_correlation_id())

    @app.exception_handler(DomainError)
    async def _domain(request: Request, error: DomainError) -> JSONResponse:
        # Raised by the gateway's own parts, e.g. its key store while
        # Postgres is away (UNAVAILABLE: 503 with Retry-After).
        translated = from_domain(error)
        if translated.status >= 500:
            log.warning("%s on %s: %s", error.reason, request.url.path, error.message)
        return problem(translated, current_correlation_id())

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return problem(_validation_problem(error), current_correlation_id())

    @app.exception_handler(HTTPException)
    async def _http(request: Request, error: HTTPException) -> Response:
        reason = {404: "NO_SUCH_ROUTE", 405: "METHOD_NOT_ALLOWED"}.get(error.status_code, "HTTP")
        headers = dict(error.headers or {})
        if error.status_code == 405:
            headers["Allow"] = methods.allowed(request.url.path) or headers.get("Allow", "")
            if request.method == "OPTIONS":  # what the path answers; no CORS preflight
                return Response(status_code=204, headers=headers)
        return problem(
            ProblemError(error.status_code, reason, str(error.detail), headers=headers),
            current_correlation_id(),
        )

    @app.exception_handler(RedisError)
    async def _redis(request: Request, error: RedisError) -> JSONResponse:
        log.warning("redis failure on %s: %s", request.url.path, error)
        return problem(
            ProblemError(
                503, "UNAVAILABLE", "a service is unavailable; retry", headers={"Retry-After": "1"}
            ),
            current_correlation_id(),
        )


def _add_probes(app: FastAPI, gateway: Gateway) -> None:
    """Liveness, readiness and the metrics scrape, outside the API document."""

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        # Each dependency with its status and latency; 503 only when the
        # gateway can serve nothing (gateway.readiness says which is which).
        overall, checks = await gateway.readiness.report()
        return JSONResponse(
            {"status": overall, "checks": {name: c.as_json() for name, c in checks.items()}},
            status_code=503 if overall == "unhealthy" else 200,
        )

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(
            generate_latest(gateway.metrics.registry), media_type=CONTENT_TYPE_LATEST
        )


def _allow_origins(app: FastAPI, gateway: Gateway) -> None:
    """CORS outermost, so that every answer a browser gets can be read by it,
    the edge's own (413, 500) included."""
    origins = [o.strip() for o in gateway.settings.cors_origins.split(",") if o.strip()]
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "Idempotency-Key",
                "X-Request-Id",
                "If-None-Match",
            ],
            expose_headers=[
                "ETag",
                "X-Request-Id",
                "Retry-After",
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
            ],
        )


def _document_problems(app: FastAPI) -> None:
    """Errors documented as what they are, application/problem+json (FastAPI
    documents every response in the route's own media type)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            for item in build().get("paths", {}).values():
                for operation in item.values():
                    for status, response in operation.get("responses", {}).items():
                        content = response.get("content", {})
                        if status[:1] in ("4", "5") and "application/json" in content:
                            content[PROBLEM_JSON] = content.pop("application/json")
            without_null_parameters(app.openapi_schema or {})
        return app.openapi_schema or build()

    app.openapi = openapi  # type: ignore[method-assign]
