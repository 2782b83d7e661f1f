"""The gateway's edge, errors from the services as problems: a refusal, a
service down, cut off midway, slow or answering what it should not."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

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
from tests.support.gateway import RESOURCE, key_for, problem_of
from tests.support.services import running_gateway
from tests.support.tcp_proxy import TcpProxy

WINDOW = {"start": "2031-05-31T00:00:00Z", "end": "2031-06-30T00:00:00Z"}


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
    migrated_database: str, availability_app: AvailabilityApp, keys: KeyRepository, tenant: str
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
    migrated_database: str, availability_app: AvailabilityApp, keys: KeyRepository, tenant: str
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
