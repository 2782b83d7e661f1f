"""Per-request values that follow a call through async code and into logs."""

from __future__ import annotations

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
