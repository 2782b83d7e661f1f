"""The gateway's edge over HTTP: CORS, request ids, and the methods each path
answers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.server import GatewayApp
from holdfast.tenancy.keys import KeyRepository
from services.availability.server import AvailabilityApp
from services.booking.server import BookingApp
from tests.support.gateway import key_for, oversized, problem_of
from tests.support.services import running_gateway

# --- CORS and request ids -------------------------------------------------------


@pytest.fixture
async def cors_api(
    migrated_database: str, booking_app: BookingApp, availability_app: AvailabilityApp
) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        running_gateway(
            migrated_database,
            f"127.0.0.1:{booking_app.port}",
            f"127.0.0.1:{availability_app.port}",
            cors_origins="https://shop.example, https://admin.example",
        ) as gateway,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}", timeout=10) as api,
    ):
        yield api


async def test_cors_preflight_allows_a_configured_origin(cors_api: httpx.AsyncClient) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
    }

    allowed = await cors_api.options(
        "/v1/holds", headers={"Origin": "https://shop.example", **preflight}
    )
    refused = await cors_api.options(
        "/v1/holds", headers={"Origin": "https://evil.example", **preflight}
    )

    assert allowed.status_code == 200, allowed.text
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "POST" in allowed.headers["Access-Control-Allow-Methods"]
    allowed_headers = allowed.headers["Access-Control-Allow-Headers"].lower()
    assert {"authorization", "idempotency-key", "content-type"} <= {
        h.strip() for h in allowed_headers.split(",")
    }
    assert "Access-Control-Allow-Origin" not in refused.headers


async def test_cors_headers_are_on_errors_and_expose_the_request_id(
    cors_api: httpx.AsyncClient, keys: KeyRepository, tenant: str
) -> None:
    """A browser must be able to read a 401 and its correlation id."""
    response = await cors_api.get("/v1/resources", headers={"Origin": "https://admin.example"})

    problem_of(response, 401)
    assert response.headers["Access-Control-Allow-Origin"] == "https://admin.example"
    exposed = response.headers["Access-Control-Expose-Headers"].lower()
    assert "x-request-id" in exposed
    assert "retry-after" in exposed


async def test_cors_headers_are_on_the_edges_own_answers(
    cors_api: httpx.AsyncClient, keys: KeyRepository, tenant: str
) -> None:
    """A browser sending too large a body can read the 413."""
    auth = await key_for(keys, tenant)
    headers = {**auth, "Origin": "https://shop.example", "Content-Type": "application/json"}

    response = await cors_api.post("/v1/holds", content=oversized(), headers=headers)

    problem_of(response, 413, "BODY_TOO_LARGE")
    assert response.headers["Access-Control-Allow-Origin"] == "https://shop.example"


async def test_without_cors_origins_no_cors_headers_are_sent(api: httpx.AsyncClient) -> None:
    response = await api.get("/healthz", headers={"Origin": "https://shop.example"})

    assert "Access-Control-Allow-Origin" not in response.headers


async def test_a_request_id_is_echoed_or_made(
    api: httpx.AsyncClient, keys: KeyRepository, tenant: str
) -> None:
    auth = await key_for(keys, tenant)
    chosen = f"checkout-{uuid.uuid4()}"

    echoed = await api.get("/v1/resources", headers={**auth, "X-Request-Id": chosen})
    made = [await api.get("/v1/resources", headers=auth) for _ in range(2)]
    too_long = await api.get("/v1/resources", headers={**auth, "X-Request-Id": "x" * 200})
    on_error = await api.get("/v1/resources", headers={"X-Request-Id": chosen})

    assert echoed.headers["X-Request-Id"] == chosen
    ids = [r.headers["X-Request-Id"] for r in made]
    assert all(ids)
    assert ids[0] != ids[1]
    assert too_long.headers["X-Request-Id"] not in ("", "x" * 200)
    assert problem_of(on_error, 401)["correlation_id"] == chosen


@pytest.mark.parametrize(
    "request_id",
    [
        pytest.param("café".encode(), id="utf-8"),
        pytest.param(b"caf\xe9", id="latin-1"),
        pytest.param(b"two words", id="space"),
    ],
)
async def test_a_request_id_that_cannot_travel_on_is_replaced(
    api: httpx.AsyncClient, keys: KeyRepository, tenant: str, request_id: bytes
) -> None:
    """The correlation id goes on to the services in gRPC metadata, which
    takes visible ASCII only; anything else is replaced, not passed on (a
    call with it never returned)."""
    auth = await key_for(keys, tenant)

    headers = {k.encode(): v.encode() for k, v in auth.items()}
    response = await api.get("/v1/resources", headers={**headers, b"X-Request-Id": request_id})

    assert response.status_code == 200, response.text
    made = response.headers["X-Request-Id"]
    assert made.encode() != request_id
    assert made.isascii()
    assert made.isprintable()


async def _first_line_answered(gateway_app: GatewayApp, raw: bytes) -> bytes:
    """The status line the gateway answers `raw` bytes with, or b"" if it
    waits for more (it took the message as unfinished)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway_app.port)
    try:
        writer.write(raw)
        await writer.drain()
        try:
            return (await asyncio.wait_for(reader.readline(), 2.0)).rstrip()
        except TimeoutError:
            return b""
    finally:
        writer.close()


@pytest.mark.parametrize(
    "raw",
    [
        # A header name a proxy in front may not read as Transfer-Encoding:
        # taking it as chunked framing would let one request hide another.
        pytest.param(
            b"POST /v1/holds HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n"
            b"Content-Length: 30\r\n\r\n0\r\n\r\nGET /v1/resources HTTP/1.1\r\n\r\n",
            id="space-before-colon",
        ),
        pytest.param(
            b"GET /v1/resources HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n",
            id="space-before-colon-alone",
        ),
        pytest.param(
            b"POST /v1/holds HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            id="length-and-chunked",
        ),
        pytest.param(
            b"GET /v1/resources HTTP/1.1\r\nHost: x\r\nX-Request-Id: a\x00b\r\n\r\n",
            id="nul-in-a-value",
        ),
        pytest.param(
            b"GET /v1/resources HTTP/1.1\r\nHost: x\r\nX-Request-Id: del\x7f\r\n\r\n",
            id="control-in-a-value",
        ),
    ],
)
async def test_a_request_framed_ambiguously_or_with_control_bytes_is_refused(
    gateway_app: GatewayApp, raw: bytes
) -> None:
    """400 at once, as RFC 9112 asks, rather than a guess at where the
    message ends (request smuggling) or a value no header may carry."""
    assert await _first_line_answered(gateway_app, raw) == b"HTTP/1.1 400 Bad Request"


# --- methods ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/v1/holds/{id}", "GET, DELETE, OPTIONS"),
        ("/v1/resources", "GET, POST, OPTIONS"),
        ("/v1/slots/{id}", "PATCH, OPTIONS"),
        ("/v1/slots/{id}/close", "POST, OPTIONS"),
    ],
)
async def test_options_and_unsupported_methods_name_every_method_a_path_answers(
    api: httpx.AsyncClient, path: str, allowed: str
) -> None:
    """RFC 9110: a 405 carries Allow; OPTIONS says what the path answers. No
    key is needed to ask, as for a CORS preflight."""
    target = path.format(id=uuid.uuid4())

    options = await api.options(target)
    put = await api.put(target, json={})

    assert options.status_code == 204, options.text
    assert options.headers["Allow"] == allowed
    problem_of(put, 405, "METHOD_NOT_ALLOWED")
    assert put.headers["Allow"] == allowed
