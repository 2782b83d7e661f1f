"""Who a gRPC call acts for: the tenant and actor trusted callers put in metadata.

Internal services are trusted to name the tenant (the gateway does so after
authenticating an API key); every query is then scoped to it.
"""

from __future__ import annotations

import re

import grpc

from holdfast.platform.context import TENANT_ID_KEY
from holdfast.platform.errors import DomainError, ErrorKind
from holdfast.tenancy import TENANT_ID_RULE, is_tenant_id

ACTOR_KEY = "x-actor"
_ACTOR = re.compile(r"^[\w.:@-]{1,100}$")


def tenant_of(context: grpc.aio.ServicerContext) -> str:
    metadata = dict(context.invocation_metadata() or ())
    tenant = metadata.get(TENANT_ID_KEY)
    if not isinstance(tenant, str) or not tenant:
        raise DomainError(
            ErrorKind.UNAUTHENTICATED,
            "TENANT_REQUIRED",
            f"every call must name its tenant in the {TENANT_ID_KEY} metadata",
        )
    if not is_tenant_id(tenant):
        raise DomainError(
            ErrorKind.INVALID_ARGUMENT,
            "TENANT_ID_MALFORMED",
            f"{TENANT_ID_KEY} must be {TENANT_ID_RULE}",
        )
    return tenant


def actor_of(context: grpc.aio.ServicerContext, tenant: str) -> str:
    """The actor recorded in the audit log: the caller's `x-actor`, else the tenant."""
    actor = dict(context.invocation_metadata() or ()).get(ACTOR_KEY)
    if isinstance(actor, str) and _ACTOR.match(actor):
        return actor
    return f"tenant:{tenant}"
