"""Per-request values that follow a call through async code and into logs."""

from __future__ import annotations

import random
import re
from contextvars import ContextVar
from dataclasses import dataclass

from holdfast.platform.errors import DomainError

correlation_id_var: ContextVar[str] = ContextVar("holdfast_correlation_id", default="")

# Metadata keys, lower case as gRPC requires.
CORRELATION_ID_KEY = "x-correlation-id"
REQUEST_ID_KEY = "x-request-id"
TENANT_ID_KEY = "x-tenant-id"
# Baggage entry that carries the correlation id across every hop, including
# the asynchronous ones (outbox rows, Stripe metadata) via the traceparent.
CORRELATION_BAGGAGE_KEY = "holdfast.correlation_id"


def new_correlation_id() -> str:
    """32 random hex digits. Not a secret (every answer shows it, a caller may
    choose it), so from `random`, reseeded in every forked worker, rather than
    the OS's generator: a system call on every request was a twenty-fifth of
    a cached read's CPU under load."""
    return f"{random.getrandbits(128):032x}"


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


@dataclass(frozen=True)
class Caller:
    """Who a call acts for: the tenant every query is scoped to, and the actor
    the audit log records."""

    tenant: str
    actor: str


# Set once per call by the server interceptor, from the call's metadata: the
# caller, or the error that explains why the metadata names none. Methods that
# need no tenant (health, webhook administration) never ask.
caller_var: ContextVar[Caller | DomainError | None] = ContextVar("holdfast_caller", default=None)


def current_caller() -> Caller:
    """The caller of the call in progress; raises its metadata's problem
    (TENANT_REQUIRED, TENANT_ID_MALFORMED) if it named no valid tenant."""
    caller = caller_var.get()
    if isinstance(caller, DomainError):
        raise caller
    if caller is None:
        raise RuntimeError("no gRPC call in progress: the server interceptor sets the caller")
    return caller


def current_tenant() -> str:
    return current_caller().tenant


def current_actor() -> str:
    return current_caller().actor
