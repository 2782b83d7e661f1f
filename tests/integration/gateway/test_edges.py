"""The gateway's edge: strict JSON, the body limit, errors from the services
as problems, a service down or slow, CORS and request ids."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import asyncpg
import grpc
import httpx
import pytest

from devtools.engines import free_port
from holdfast.contracts.booking.v1 import booking_pb2
from holdfast.tenancy.keys import KeyRepository
from services.availability.server import AvailabilityApp
from services.booking.server import BookingApp
from tests.support.availability import eventually
from tests.support.booking import BookingClient
from tests.support.gateway import key_for, problem_of
from tests.support.services import running_gateway
from tests.support.tcp_proxy import TcpProxy

WINDOW = {"start": "2031-05-31T00:00:00Z", "end": "2031-06-30T00:00:00Z"}
RESOURCE = {
    "name": "Kayak",
    "time_zone": "Europe/Lisbon",
    "price": {"currency": "EUR", "amount_minor": 4000},
    "default_capacity": 2,
}


# --- strict JSON -------------------------------------------------------------


async def test_an_unknown_field_is_refused_by_name(
    api: httpx.AsyncClient, keys: KeyRepository, tenant: str, db: asyncpg.Pool
) -> None:
    auth = await key_for(keys, tenant)

    top = await api.post("/v1/resources", json={**RESOURCE, "colour": "red"}, headers=auth)
    nested = await api.post(
        "/v1/resources",
        json={**RESOURCE, "price": {**RESOURCE["price"], "vat": 23}},  # type: ignore[dict-item]
        headers=auth,
    )

    body = problem_of(top, 422, "INVALID_ARGUMENT")
    assert [e["field"] for e in body["errors"]] == ["colour"]
    assert "colour" in body["detail"]
    assert [e["field"] for e in problem_of(nested, 422)["errors"]] == ["price.vat"]
    made = await db.fetchval("SELECT count(*) FROM resources WHERE tenant_id = $1", tenant)
    assert made == 0


async def test_malformed_json_is_a_400(
    api: httpx.AsyncClient, keys: KeyRepository, tenant: str
) -> None:
    auth = await key_for(keys, tenant)
    headers = {**auth, "Content-Type": "application/json"}

    response = await api.post("/v1/resources", content=b'{"name": "Kayak",', headers=headers)

    problem_of(response, 400, "MALFORMED_JSON")


async def test_a_body_that_is_not_an_object_is_refused(
    api: httpx.AsyncClient, keys: KeyRepository, tenant: str
) -> None:
    auth = await key_for(keys, tenant)

    response = await api.post("/v1/resources", json=["Kayak"], headers=auth)

    problem_of(response, 422, "INVALID_ARGUMENT")


async def test_a_field_the_service_refuses_is_named(
    api: httpx.AsyncClient, keys: KeyRepository, tenant: str
) -> None:
    """INVALID_ARGUMENT from the booking service with its field violations."""
    auth = await key_for(keys, tenant)

    response = await api.post(
        "/v1/resources", json={**RESOURCE, "time_zone": "Mars/Olympus"}, headers=auth
    )

    body = problem_of(response, 422)
    assert "time_zone" in [e["field"] for e in body["errors"]], body
    # Said in our words, as written: not pydantic's "Value error, ..." around them.
    [detail] = [e["detail"] for e in body["errors"] if e["field"] == "time_zone"]
    assert detail == "must be an IANA time zone name, e.g. Europe/Lisbon"


async def test_an_invalid_uuid_in_the_path_is_a_422(
    api: httpx.AsyncClient, keys: KeyRepository, tenant: str
) -> None:
    auth = await key_for(keys, tenant)

    response = await api.get("/v1/holds/not-a-uuid", headers=auth)

    body = problem_of(response, 422, "INVALID_ARGUMENT")
    assert [e["field"] for e in body["errors"]] == ["path.hold_id"]


async def test_an_availability_window_without_time_zone_is_a_422(
    api: httpx.AsyncClient, keys: KeyRepository, client: BookingClient, tenant: str
) -> None:
    auth = await key_for(keys, tenant)
    resource, _ = await client.resource_with_slots()

    response = await api.get(
        f"/v1/resources/{resource.resource_id}/availability",
        params={"start": "2031-06-01T00:00:00", "end": "2031-06-02T00:00:00"},
        headers=auth,
    )

    body = problem_of(response, 422, "INVALID_ARGUMENT")
    assert [e["field"] for e in body["errors"]] == ["query.start", "query.end"]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        pytest.param("0001-01-01T00:00:00+01:00", "0001-01-02T00:00:00+01:00", id="before-year-1"),
        pytest.param("9999-12-31T22:00:00-05:00", "9999-12-31T23:00:00-05:00", id="after-9999"),
    ],
)
async def test_a_time_past_what_utc_can_hold_is_a_422(
    api: httpx.AsyncClient,
    keys: KeyRepository,
    client: BookingClient,
    tenant: str,
    start: str,
    end: str,
) -> None:
    """Valid RFC 3339 at its offset, out of range once in UTC."""
    auth = await key_for(keys, tenant)
    resource, _ = await client.resource_with_slots()
    path = f"/v1/resources/{resource.resource_id}"
    window = {"start": start, "end": end}

    answers = [
        await api.get(f"{path}/availability", params=window, headers=auth),
        await api.get(f"{path}/availability/stream", params=window, headers=auth),
        await api.post(f"{path}/slots", json={"slots": [window]}, headers=auth),
    ]

    for response in answers:
        body = problem_of(response, 422, "INVALID_ARGUMENT")
        assert "UTC" in str(body["errors"]), body


# --- body limit ----------------------------------------------------------------


def oversized() -> bytes:
    """A well-formed hold request just over the test gateway's 64 KiB."""
    padding = "x" * (64 * 1024)
    return f'{{"resource_id": "{uuid.uuid4()}", "customer_ref": "{padding}"}}'.encode()


async def test_a_body_over_the_limit_is_a_413_by_its_length(
    api: httpx.AsyncClient, keys: KeyRepository, tenant: str
) -> None:
    auth = await key_for(keys, tenant)
    headers = {**auth, "Content-Type": "application/json", "Idempotency-Key": "big"}

    response = await api.post("/v1/holds", content=oversized(), headers=headers)

    problem_of(response, 413, "BODY_TOO_LARGE")


async def test_a_chunked_body_over_the_limit_is_a_413(
    api: httpx.AsyncClient, keys: KeyRepository, tenant: str
) -> None:
    auth = await key_for(keys, tenant)
    headers = {**auth, "Content-Type": "application/json", "Idempotency-Key": "big"}
    data = oversized()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 8192):
            yield data[start : start + 8192]

    response = await api.post("/v1/holds", content=chunks(), headers=headers)

    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in response.request.headers
    problem_of(response, 413, "BODY_TOO_LARGE")


async def test_a_body_under_the_limit_passes(
    api: httpx.AsyncClient, keys: KeyRepository, client: BookingClient, tenant: str
) -> None:
    auth = await key_for(keys, tenant)
    resource, [slot] = await client.resource_with_slots()
    body = {"resource_id": resource.resource_id, "slot_ids": [slot.slot_id], "quantity": 1}
    headers = {**auth, "Idempotency-Key": str(uuid.uuid4()), "Content-Type": "application/json"}
    data = httpx.Request("POST", "/", json=body).content

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 16):
            yield data[start : start + 16]

    response = await api.post("/v1/holds", content=chunks(), headers=headers)

    assert response.status_code == 201, response.text


# --- errors from the services ---------------------------------------------------


async def test_sold_out_is_a_409(
    api: httpx.AsyncClient, keys: KeyRepository, client: BookingClient, tenant: str
) -> None:
    auth = await key_for(keys, tenant)
    resource, [slot] = await client.resource_with_slots(capacity=2)
    body = {"resource_id": resource.resource_id, "slot_ids": [slot.slot_id], "quantity": 2}

    first = await api.post("/v1/holds", json=body, headers={**auth, "Idempotency-Key": "a"})
    second = await api.post("/v1/holds", json=body, headers={**auth, "Idempotency-Key": "b"})

    assert first.status_code == 201, first.text
    problem_of(second, 409, "SOLD_OUT")


async def test_a_booking_service_that_is_down_is_a_503(
    migrated_database: str,
    availability_app: AvailabilityApp,
    keys: KeyRepository,
    tenant: str,
) -> None:
    auth = await key_for(keys, tenant)
    nothing_there = f"127.0.0.1:{free_port()}"
    async with (
        running_gateway(
            migrated_database, nothing_there, f"127.0.0.1:{availability_app.port}"
        ) as gateway,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}", timeout=10) as api,
    ):
        response = await api.get("/v1/resources", headers=auth)
        ready = await api.get("/readyz")

    body = problem_of(response, 503)
    assert "unavailable" in body["detail"]
    assert "127.0.0.1" not in response.text  # no internals
    assert response.headers["Retry-After"] == "1"
    # Still in its load balancer: availability works, and what needs booking
    # is answered 503 with Retry-After by the gateway itself.
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"
    assert ready.json()["checks"]["booking"]["status"] == "down"


async def test_a_service_cut_off_midway_is_a_503_and_recovers(
    migrated_database: str,
    booking_app: BookingApp,
    availability_app: AvailabilityApp,
    keys: KeyRepository,
    tenant: str,
) -> None:
    auth = await key_for(keys, tenant)
    proxy = TcpProxy("127.0.0.1", availability_app.port)
    await proxy.start()
    async with (
        running_gateway(
            migrated_database, f"127.0.0.1:{booking_app.port}", proxy.address
        ) as gateway,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}", timeout=10) as api,
    ):
        created = await api.post("/v1/resources", json=RESOURCE, headers=auth)
        path = f"/v1/resources/{created.json()['id']}/availability"
        before = await api.get(path, params=WINDOW, headers=auth)
        await proxy.cut()
        during = await api.get(path, params=WINDOW, headers=auth)
        await proxy.start()

        async def after() -> httpx.Response:
            return await api.get(path, params=WINDOW, headers=auth)

        back = await eventually(after, lambda r: r.status_code == 200, within=10)
        await proxy.cut()

    assert before.status_code == 200, before.text
    problem_of(during, 503)
    assert back.json() == before.json()


Handler = Callable[[bytes, grpc.aio.ServicerContext[bytes, bytes]], Awaitable[bytes]]


@asynccontextmanager
async def fake_service(service: str, methods: dict[str, Handler]) -> AsyncIterator[str]:
    """A gRPC server answering `service`'s `methods` with the given handlers
    (raw bytes in and out); yields its address."""
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                service,
                {name: grpc.unary_unary_rpc_method_handler(h) for name, h in methods.items()},
            )
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


@pytest.fixture
async def mute_booking() -> AsyncIterator[str]:
    """A booking service that takes ListResources calls and never answers them."""

    async def never(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async with fake_service("holdfast.booking.v1.InventoryService", {"ListResources": never}) as at:
        yield at


async def test_a_service_that_never_answers_is_a_504(
    migrated_database: str,
    availability_app: AvailabilityApp,
    mute_booking: str,
    keys: KeyRepository,
    tenant: str,
) -> None:
    """The call is given up at the gateway's deadline instead of hanging."""
    auth = await key_for(keys, tenant)
    async with (
        running_gateway(
            migrated_database,
            mute_booking,
            f"127.0.0.1:{availability_app.port}",
            request_timeout_seconds=0.5,
        ) as gateway,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}", timeout=30) as api,
    ):
        response = await api.get("/v1/resources", headers=auth)

    body = problem_of(response, 504)
    assert "did not answer in time" in body["detail"]
    assert response.headers["Retry-After"] == "1"


async def test_an_unexpected_answer_is_a_500_with_the_correlation_id_and_nothing_else(
    migrated_database: str,
    availability_app: AvailabilityApp,
    keys: KeyRepository,
    tenant: str,
) -> None:
    """A newer booking service with a hold status this gateway does not know."""
    auth = await key_for(keys, tenant)
    hold_id = str(uuid.uuid4())

    async def from_the_future(
        request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        hold = booking_pb2.Hold(hold_id=hold_id, status=99)  # type: ignore[arg-type]
        return booking_pb2.GetHoldResponse(hold=hold).SerializeToString()

    async with (
        fake_service("holdfast.booking.v1.BookingService", {"GetHold": from_the_future}) as at,
        running_gateway(migrated_database, at, f"127.0.0.1:{availability_app.port}") as gateway,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}", timeout=10) as api,
    ):
        response = await api.get(
            f"/v1/holds/{hold_id}", headers={**auth, "X-Request-Id": "quote-me"}
        )
        metrics = await api.get("/metrics")

    body = problem_of(response, 500, "INTERNAL")
    assert body["correlation_id"] == "quote-me"
    assert "99" not in body["detail"]
    assert "Traceback" not in response.text
    assert 'route="/v1/holds/{hold_id}",status="500"' in metrics.text


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
        pytest.param(b"del\x7f", id="control"),
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
