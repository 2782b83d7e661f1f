"""Who a gRPC call acts for: the tenant and actor trusted callers put in metadata.

Internal services are trusted to name the tenant (the gateway does so after
authenticating an API key); every query is then scoped to it. The server
interceptor reads them once per call (`caller_from`); handlers ask
`holdfast.platform.context.current_tenant()` and `current_actor()`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from holdfast.platform.context import TENANT_ID_KEY, Caller
from holdfast.platform.errors import DomainError, ErrorKind
from holdfast.tenancy import TENANT_ID_RULE, is_tenant_id

ACTOR_KEY = "x-actor"
_ACTOR = re.compile(r"^[\w.:@-]{1,100}$")


def caller_from(metadata: Mapping[str, str | bytes]) -> Caller | DomainError:
    """The caller a call's metadata names, or the error that says why it names none.

    The actor recorded in the audit log is the caller's `x-actor`, else the tenant.
    """
    tenant = metadata.get(TENANT_ID_KEY)
    if not isinstance(tenant, str) or not tenant:
        return DomainError(
            ErrorKind.UNAUTHENTICATED,
            "TENANT_REQUIRED",
            f"every call must name its tenant in the {TENANT_ID_KEY} metadata",
        )
    if not is_tenant_id(tenant):
        return DomainError(
            ErrorKind.INVALID_ARGUMENT,
            "TENANT_ID_MALFORMED",
            f"{TENANT_ID_KEY} must be {TENANT_ID_RULE}",
        )
    actor = metadata.get(ACTOR_KEY)
    if not (isinstance(actor, str) and _ACTOR.match(actor)):
        actor = f"tenant:{tenant}"
    return Caller(tenant, actor)
