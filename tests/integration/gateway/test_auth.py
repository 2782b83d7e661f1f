"""Who may call what: API keys (missing, malformed, unknown, expired,
revoked → 401 with a Bearer challenge) and scopes (missing → 403)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from holdfast.tenancy import SCOPES
from holdfast.tenancy.keys import KeyRepository
from tests.support.gateway import Call, key_for, problem_of

WINDOW = {"start": "2031-05-31T00:00:00Z", "end": "2031-06-30T00:00:00Z"}
SOME_ID = "9f0c5a52-3b7e-4a43-8a57-0c1d8f6e2b10"


def routes_of(scope: str) -> list[Call]:
    """Each route needing `scope`, with arguments it would accept (ids no
    tenant has, so a call that passes the scope check answers 404)."""
    hold = {"resource_id": SOME_ID, "slot_ids": [SOME_ID], "quantity": 1}
    resource = {
        "name": "Boat",
        "time_zone": "Europe/Lisbon",
        "price": {"currency": "EUR", "amount_minor": 1000},
        "default_capacity": 4,
    }
    slots = {"slots": [{"start": "2031-07-01T09:00:00Z", "end": "2031-07-01T10:00:00Z"}]}
    return {
        "availability:read": [
            Call("GET", "/v1/resources"),
            Call("GET", f"/v1/resources/{SOME_ID}"),
            Call("GET", f"/v1/resources/{SOME_ID}/availability", WINDOW),
            Call("GET", f"/v1/resources/{SOME_ID}/availability/stream", WINDOW),
        ],
        "holds:write": [
            Call("POST", "/v1/holds", body=hold, headers=(("Idempotency-Key", "scope-test"),)),
            Call("GET", f"/v1/holds/{SOME_ID}"),
            Call("DELETE", f"/v1/holds/{SOME_ID}"),
            Call("POST", f"/v1/holds/{SOME_ID}/checkout"),
        ],
        "bookings:read": [
            Call("GET", "/v1/bookings"),
            Call("GET", f"/v1/bookings/{SOME_ID}"),
        ],
        "bookings:write": [
            Call("POST", f"/v1/bookings/{SOME_ID}/cancel"),
        ],
        "inventory:admin": [
            Call("POST", "/v1/resources", body=resource),
            Call("POST", f"/v1/resources/{SOME_ID}/slots", body=slots),
            Call("PATCH", f"/v1/slots/{SOME_ID}", body={"capacity": 2}),
            Call("POST", f"/v1/slots/{SOME_ID}/close"),
            Call("POST", f"/v1/slots/{SOME_ID}/reopen"),
        ],
    }[scope]


@pytest.mark.parametrize("scope", SCOPES)
async def test_a_key_without_the_scope_is_refused(
    api: httpx.AsyncClient, keys: KeyRepository, tenant: str, scope: str
) -> None:
    lacking = await key_for(keys, tenant, tuple(s for s in SCOPES if s != scope))
    only = await key_for(keys, tenant, (scope,))

    refused = [(route, await route.send(api, lacking)) for route in routes_of(scope)]
    allowed = [(route, await route.send(api, only)) for route in routes_of(scope)]

    for route, response in refused:
        body = problem_of(response, 403, "MISSING_SCOPE")
        assert scope in body["detail"], (route, body)
    # The scope alone is enough: past the check, the routes do their work
    # (unknown ids answer 404; a checkout, 409 when payments are off).
    wrong = [
        (r, a.status_code, a.text) for r, a in allowed if a.status_code not in (200, 201, 404, 409)
    ]
    assert not wrong, wrong


async def test_an_expired_key_is_refused(
    api: httpx.AsyncClient, keys: KeyRepository, tenant: str
) -> None:
    expired = await key_for(keys, tenant, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    later = await key_for(keys, tenant, expires_at=datetime.now(UTC) + timedelta(days=1))

    refused = await api.get("/v1/resources", headers=expired)
    allowed = await api.get("/v1/resources", headers=later)

    body = problem_of(refused, 401, "UNAUTHENTICATED")
    assert "expired" in body["detail"]
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert allowed.status_code == 200, allowed.text


async def test_a_revoked_key_is_refused(
    api: httpx.AsyncClient, keys: KeyRepository, tenant: str
) -> None:
    auth = await key_for(keys, tenant)
    [key] = await keys.list_keys(tenant)

    before = await api.get("/v1/resources", headers=auth)
    await keys.revoke(key.id)
    after = await api.get("/v1/resources", headers=auth)

    assert before.status_code == 200, before.text
    body = problem_of(after, 401, "UNAUTHENTICATED")
    assert "revoked" in body["detail"]
    assert after.headers["WWW-Authenticate"].startswith("Bearer")


def _other_secret(token: str) -> str:
    """The same key's prefix with another, well-formed secret."""
    prefix, secret = token[: len("hf_") + 12], token[len("hf_") + 13 :]
    flipped = ("A" if secret[0] != "A" else "B") + secret[1:]
    return f"{prefix}_{flipped}"


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="absent"),
        pytest.param("", id="empty"),
        pytest.param("{token}", id="no-scheme"),
        pytest.param("Basic dXNlcjpwYXNzd29yZA==", id="basic"),
        pytest.param("Bearer", id="scheme-only"),
        pytest.param("Bearer garbage", id="garbage"),
        pytest.param("Bearer hf_000000000000_" + "x" * 43, id="unknown-prefix"),
        pytest.param("Bearer {wrong_secret}", id="right-prefix-wrong-secret"),
        pytest.param("Bearer {token}x", id="token-with-extra"),
        pytest.param("Token {token}", id="other-scheme"),
    ],
)
async def test_a_malformed_or_wrong_authorization_header_is_refused(
    api: httpx.AsyncClient, keys: KeyRepository, tenant: str, authorization: str | None
) -> None:
    auth = await key_for(keys, tenant)
    token = auth["Authorization"].removeprefix("Bearer ")
    headers = {"X-Request-Id": f"auth-{uuid.uuid4()}"}
    if authorization is not None:
        headers["Authorization"] = authorization.format(
            token=token, wrong_secret=_other_secret(token)
        )

    refused = await api.get("/v1/resources", headers=headers)
    control = await api.get("/v1/resources", headers=auth)

    body = problem_of(refused, 401, "UNAUTHENTICATED")
    assert body["correlation_id"] == headers["X-Request-Id"]
    assert refused.headers["WWW-Authenticate"] == 'Bearer realm="holdfast"'
    assert token not in refused.text
    assert control.status_code == 200, control.text


async def test_the_scheme_is_case_insensitive(
    api: httpx.AsyncClient, keys: KeyRepository, tenant: str
) -> None:
    auth = await key_for(keys, tenant)
    token = auth["Authorization"].removeprefix("Bearer ")

    response = await api.get("/v1/resources", headers={"Authorization": f"bearer {token}"})

    assert response.status_code == 200, response.text


async def test_every_error_is_a_problem_with_the_request_id(
    api: httpx.AsyncClient, keys: KeyRepository, tenant: str
) -> None:
    """401, 403, 404 (of a thing and of a route), 405 and 422 alike:
    problem+json with the correlation id the caller chose."""
    auth = await key_for(keys, tenant)
    reader = await key_for(keys, tenant, ("availability:read",))
    cases = [
        ("GET", "/v1/resources", {}, 401, "UNAUTHENTICATED"),
        ("POST", "/v1/resources", reader, 403, "MISSING_SCOPE"),
        ("GET", f"/v1/resources/{uuid.uuid4()}", auth, 404, None),
        ("GET", "/v1/no-such-route", auth, 404, "NO_SUCH_ROUTE"),
        ("PUT", "/v1/resources", auth, 405, "METHOD_NOT_ALLOWED"),
        ("GET", "/v1/resources?page_size=0", auth, 422, "INVALID_ARGUMENT"),
    ]
    for method, path, headers, status, reason in cases:
        request_id = f"req-{uuid.uuid4()}"
        response = await api.request(method, path, headers={**headers, "X-Request-Id": request_id})
        body = problem_of(response, status, reason)
        assert body["correlation_id"] == request_id, (path, body)
        assert response.headers["X-Request-Id"] == request_id
