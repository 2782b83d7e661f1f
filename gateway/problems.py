"""Errors as `application/problem+json` (RFC 9457), one mapping for all routes.

gRPC statuses map as the design's table says; the machine-readable reason,
field errors and the correlation id come from the status's google.rpc
details. The gateway's own domain errors (its key store, say) map the same
way. Every 503 and 504 says when to retry. An unexpected failure says only that,
with the correlation id.
"""

from __future__ import annotations

import math
from typing import Any

import grpc
from fastapi.responses import JSONResponse

from holdfast.platform.errors import DomainError
from holdfast.platform.grpc_errors import details_of

PROBLEM_JSON = "application/problem+json"

_HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 422,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}
_TITLES = {
    400: "Bad request",
    401: "Unauthenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
    504: "Timed out",
}


# Values the API hands out and takes back unchanged (a page cursor, a stream
# position): a bad one is a malformed request (400), while a value the caller
# chose that breaks a rule is an invalid one (422).
OPAQUE_PARAMETERS = frozenset({"query.cursor", "header.last-event-id"})
# By gRPC field name, the HTTP field or parameter each comes from, where the
# two names differ: a service's field violation names what the caller sent.
_HTTP_FIELDS = {
    "page_token": "query.cursor",
    "ttl": "ttl_seconds",
    "window.start": "window.start_time",
    "window.end": "window.end_time",
}


def invalid_argument_status(fields: list[str]) -> int:
    """400 when only opaque values are wrong, 422 otherwise."""
    return 400 if fields and all(f in OPAQUE_PARAMETERS for f in fields) else 422


class ProblemError(Exception):
    """Raised anywhere in a route to answer with a problem document."""

    def __init__(
        self,
        status: int,
        reason: str,
        detail: str,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}


def problem(error: ProblemError, correlation_id: str) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://holdfast.dev/problems/{error.reason.lower().replace('_', '-')}",
        "title": _TITLES.get(error.status, "Error"),
        "status": error.status,
        "detail": error.detail,
        "reason": error.reason,
        "correlation_id": correlation_id,
    }
    if error.errors:
        body["errors"] = error.errors
    return JSONResponse(
        body,
        status_code=error.status,
        media_type=PROBLEM_JSON,
        headers={**error.headers, "X-Request-Id": correlation_id},
    )


def _retry_headers(status: int, retry_after: float | None) -> dict[str, str]:
    """Retry-After as the error says, and 1 s on any 503 or 504 that says
    nothing: a client told "unavailable" or "too slow" is always told when
    to come back (with the same Idempotency-Key, a retry is safe)."""
    if retry_after is None and status in (503, 504):
        retry_after = 1.0
    if retry_after is None:
        return {}
    return {"Retry-After": str(max(1, math.ceil(retry_after)))}


def from_domain(error: DomainError) -> ProblemError:
    """A domain error raised in the gateway itself (a dependency, a route)."""
    status = _HTTP_STATUS[getattr(grpc.StatusCode, error.kind.value)]
    errors = [{"field": v.field, "detail": v.description} for v in error.violations]
    headers = _retry_headers(status, error.retry_after)
    return ProblemError(status, error.reason, error.message, errors=errors, headers=headers)


def from_grpc(error: grpc.aio.AioRpcError) -> ProblemError:
    details = details_of(error)
    status = _HTTP_STATUS.get(details.code, 500)
    if status == 500:
        return ProblemError(500, "INTERNAL", "something went wrong; quote the correlation id")
    headers = _retry_headers(status, details.retry_after)
    reason = details.reason or details.code.name
    detail = details.message or reason
    if details.code is grpc.StatusCode.DEADLINE_EXCEEDED:
        detail = "a service did not answer in time; retry"
    elif details.code is grpc.StatusCode.UNAVAILABLE and not details.reason:
        detail = "a service is unavailable; retry"
    errors = [
        {"field": _HTTP_FIELDS.get(field, field), "detail": text}
        for field, text in details.field_violations
    ]
    if details.code is grpc.StatusCode.INVALID_ARGUMENT:
        status = invalid_argument_status([e["field"] for e in errors])
    return ProblemError(status, reason, detail, errors=errors, headers=headers)
