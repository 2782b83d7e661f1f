"""Per-request values that follow a call through async code and into logs."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

correlation_id_var: ContextVar[str] = ContextVar("holdfast_correlation_id", default="")

# Metadata keys, lower case as gRPC requires.
CORRELATION_ID_KEY = "x-correlation-id"
REQUEST_ID_KEY = "x-request-id"
TENANT_ID_KEY = "x-tenant-id"
# Baggage entry that carries the correlation id across every hop, including
# the asynchronous ones (outbox rows, Stripe metadata) via the traceparent.
CORRELATION_BAGGAGE_KEY = "holdfast.correlation_id"


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def current_correlation_id() -> str:
    return correlation_id_var.get()


# What a caller may choose as the correlation id: 1-128 visible ASCII
# characters. Anything else (say, "café") would be refused by gRPC as metadata,
# and a call carrying it through the client interceptors never returns.
_VALID_CORRELATION_ID = re.compile(r"[\x21-\x7e]{1,128}")


def correlation_id_from(*candidates: object) -> str:
    """The first candidate that is a valid correlation id, else a new one."""
    for candidate in candidates:
        if isinstance(candidate, str) and _VALID_CORRELATION_ID.fullmatch(candidate):
            return candidate
    return new_correlation_id()
