"""The gateway when its key store (Postgres) is away, and what /readyz says.

The gateway reads API keys from a Postgres of the test's own, which the test
stops; booking and availability stay on the run's database, so only the key
store is gone.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from devtools.engines import free_port
from devtools.fakestripe import FakeStripe
from gateway.server import GatewayApp
from holdfast.tenancy.keys import KeyRepository
from services.availability.server import AvailabilityApp
from services.booking.server import BookingApp
from tests.support.availability import eventually
from tests.support.gateway import key_for, problem_of
from tests.support.metrics import sample
from tests.support.postgres_server import PostgresServer
from tests.support.services import running_gateway

RunningGateway = Callable[..., AbstractAsyncContextManager[tuple[GatewayApp, httpx.AsyncClient]]]


@pytest.fixture
async def key_store(postgres_server: PostgresServer) -> AsyncIterator[KeyRepository]:
    """The gateway's key store on the test's own Postgres, and a repository on it."""
    url = await postgres_server.create_database("keys", migrated=True)
    async with asyncpg.create_pool(url, min_size=1, max_size=2) as pool:
        yield KeyRepository(pool)


@pytest.fixture
def gateway_on_key_store(
    postgres_server: PostgresServer,
    booking_app: BookingApp,
    availability_app: AvailabilityApp,
    key_store: KeyRepository,
) -> RunningGateway:
    @asynccontextmanager
    async def start(
        booking: str | None = None, availability: str | None = None, **overrides: object
    ) -> AsyncIterator[tuple[GatewayApp, httpx.AsyncClient]]:
        async with (
            running_gateway(
                postgres_server.url("keys"),
                booking or f"127.0.0.1:{booking_app.port}",
                availability or f"127.0.0.1:{availability_app.port}",
                **{"key_cache_seconds": 0.2, **overrides},
            ) as gateway,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}", timeout=10) as api,
        ):
            yield gateway, api

    return start


def _tenant() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


async def _status(api: httpx.AsyncClient, auth: dict[str, str]) -> int:
    return (await api.get("/v1/resources", headers=auth)).status_code


# --- keys while the key store is away --------------------------------------------


async def test_keys_read_before_the_outage_keep_their_answer_within_the_grace(
    gateway_on_key_store: RunningGateway, key_store: KeyRepository, postgres_server: PostgresServer
) -> None:
    known = await key_for(key_store, _tenant())
    revoked = await key_for(key_store, _tenant())
    expiring = await key_for(
        key_store, _tenant(), expires_at=datetime.now(UTC) + timedelta(seconds=3)
    )
    never_used = await key_for(key_store, _tenant())
    async with gateway_on_key_store(key_outage_grace_seconds=300) as (gateway, api):
        assert {await _status(api, auth) for auth in (known, revoked, expiring)} == {200}
        await key_store.revoke(await _key_id(key_store, revoked))
        # Seen revoked once its cache time is over.
        await eventually(lambda: _status(api, revoked), lambda status: status == 401)
        await postgres_server.stop("fast")

        # Past its cache time the known key is still taken as last read...
        known_statuses: list[int] = []

        async def served_in_grace() -> float:
            known_statuses.append(await _status(api, known))
            return sample(gateway, "holdfast_gateway_keys_served_in_grace_total")

        await eventually(served_in_grace, lambda count: count >= 3)
        # ...the revoked one stays refused, the expiring one expires on time...
        revoked_answer = await api.get("/v1/resources", headers=revoked)
        await eventually(lambda: _status(api, expiring), lambda status: status == 401, within=30)
        # ...and a key the gateway never read cannot be checked: 503, not 401.
        unknown_answer = await api.get("/v1/resources", headers=never_used)
        await postgres_server.start()
        await eventually(
            lambda: api.get("/v1/resources", headers=never_used),
            lambda r: r.status_code == 200,
            within=30,
        )

    assert set(known_statuses) == {200}, known_statuses
    assert problem_of(revoked_answer, 401)["detail"] == "the API key was revoked"
    problem_of(unknown_answer, 503)
    assert unknown_answer.headers["Retry-After"].isdigit()


async def test_the_grace_ends_and_a_lapsed_key_is_then_503_never_500(
    gateway_on_key_store: RunningGateway, key_store: KeyRepository, postgres_server: PostgresServer
) -> None:
    known = await key_for(key_store, _tenant())
    async with gateway_on_key_store(key_outage_grace_seconds=1) as (_, api):
        assert await _status(api, known) == 200
        await postgres_server.stop("fast")
        statuses: list[int] = []

        async def answer() -> httpx.Response:
            response = await api.get("/v1/resources", headers=known)
            statuses.append(response.status_code)
            return response

        refused = await eventually(answer, lambda r: r.status_code == 503, within=30)

    assert set(statuses) <= {200, 503}, statuses
    problem_of(refused, 503)
    assert refused.headers["Retry-After"].isdigit()


async def test_without_a_grace_a_lapsed_key_is_503(
    gateway_on_key_store: RunningGateway, key_store: KeyRepository, postgres_server: PostgresServer
) -> None:
    known = await key_for(key_store, _tenant())
    async with gateway_on_key_store(key_outage_grace_seconds=0, key_cache_seconds=0) as (_, api):
        assert await _status(api, known) == 200
        await postgres_server.stop("fast")
        refused = await api.get("/v1/resources", headers=known)

    problem_of(refused, 503)
    assert refused.headers["Retry-After"].isdigit()


async def _key_id(keys: KeyRepository, auth: dict[str, str]) -> uuid.UUID:
    found = await keys.find(auth["Authorization"].removeprefix("Bearer "))
    assert found is not None
    return found.id


# --- /readyz -----------------------------------------------------------------------


def _checks(ready: httpx.Response) -> dict[str, str]:
    return {name: check["status"] for name, check in ready.json()["checks"].items()}


async def test_readyz_lists_every_dependency_with_its_status_and_latency(
    gateway_on_key_store: RunningGateway,
) -> None:
    async with (
        FakeStripe() as stripe,
        gateway_on_key_store(stripe_api_base=stripe.base_url) as (
            _,
            api,
        ),
    ):
        ready = await eventually(
            lambda: api.get("/readyz"), lambda r: r.json()["status"] == "healthy", within=30
        )

    assert ready.status_code == 200
    checks = ready.json()["checks"]
    assert set(checks) == {"booking", "availability", "postgres", "redis", "stripe"}
    for check in checks.values():
        assert check["status"] == "up", checks
        assert isinstance(check["latency_ms"], float | int), checks
        assert 0 <= check["latency_ms"] < 60_000


async def test_readyz_is_degraded_while_the_key_store_or_stripe_is_away(
    gateway_on_key_store: RunningGateway, postgres_server: PostgresServer
) -> None:
    nothing_there = f"http://127.0.0.1:{free_port()}"
    async with gateway_on_key_store(stripe_api_base=nothing_there) as (_, api):
        stripe_away = await api.get("/readyz")
        await postgres_server.stop("fast")
        both_away = await api.get("/readyz")

    assert stripe_away.status_code == 200
    assert stripe_away.json()["status"] == "degraded"
    assert _checks(stripe_away) == {
        "booking": "up",
        "availability": "up",
        "postgres": "up",
        "redis": "up",
        "stripe": "down",
    }
    assert both_away.status_code == 200
    assert both_away.json()["status"] == "degraded"
    assert _checks(both_away)["postgres"] == "down"
    assert both_away.json()["checks"]["postgres"]["detail"]


async def test_readyz_is_unhealthy_when_neither_service_answers(
    gateway_on_key_store: RunningGateway,
) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    async with gateway_on_key_store(booking=nowhere, availability=nowhere) as (_, api):
        ready = await api.get("/readyz")
        alive = await api.get("/healthz")

    assert ready.status_code == 503
    assert ready.json()["status"] == "unhealthy"
    assert _checks(ready) == {
        "booking": "down",
        "availability": "down",
        "postgres": "up",
        "redis": "up",
    }
    assert alive.status_code == 200
