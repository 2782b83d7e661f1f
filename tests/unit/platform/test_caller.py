"""Who a call acts for, as the server interceptor reads it from the metadata."""

from __future__ import annotations

import pytest

from holdfast.platform.caller import caller_from
from holdfast.platform.context import Caller, caller_var, current_actor, current_tenant
from holdfast.platform.errors import DomainError, ErrorKind


def test_a_named_tenant_and_actor_are_the_caller() -> None:
    assert caller_from({"x-tenant-id": "acme", "x-actor": "api-key:abc"}) == Caller(
        "acme", "api-key:abc"
    )


def test_the_actor_defaults_to_the_tenant() -> None:
    assert caller_from({"x-tenant-id": "acme"}) == Caller("acme", "tenant:acme")
    assert caller_from({"x-tenant-id": "acme", "x-actor": "no spaces!"}) == Caller(
        "acme", "tenant:acme"
    )


@pytest.mark.parametrize(
    ("metadata", "kind", "reason"),
    [
        ({}, ErrorKind.UNAUTHENTICATED, "TENANT_REQUIRED"),
        ({"x-tenant-id": ""}, ErrorKind.UNAUTHENTICATED, "TENANT_REQUIRED"),
        ({"x-tenant-id": b"acme"}, ErrorKind.UNAUTHENTICATED, "TENANT_REQUIRED"),
        ({"x-tenant-id": "Bad Tenant!"}, ErrorKind.INVALID_ARGUMENT, "TENANT_ID_MALFORMED"),
    ],
)
def test_metadata_without_a_valid_tenant_is_an_error(
    metadata: dict[str, str | bytes], kind: ErrorKind, reason: str
) -> None:
    error = caller_from(metadata)
    assert isinstance(error, DomainError)
    assert (error.kind, error.reason) == (kind, reason)


def test_current_tenant_raises_the_metadata_problem() -> None:
    token = caller_var.set(caller_from({}))
    try:
        with pytest.raises(DomainError) as raised:
            current_tenant()
        assert raised.value.reason == "TENANT_REQUIRED"
    finally:
        caller_var.reset(token)


def test_current_tenant_and_actor_read_the_call_in_progress() -> None:
    token = caller_var.set(Caller("acme", "cli"))
    try:
        assert (current_tenant(), current_actor()) == ("acme", "cli")
    finally:
        caller_var.reset(token)
    with pytest.raises(RuntimeError):
        current_tenant()
