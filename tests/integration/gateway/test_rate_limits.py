"""Rate limits (GCRA in Redis) per key and per client address: exact counts
at the boundary, the RateLimit headers, and what happens when Redis is down.

Each test runs a gateway of its own on a Redis of its own, so no other
test's requests (all from 127.0.0.1) spend its address budget. Tests that
count what a burst lets through count per hour (HOLDFAST_RATE_LIMIT_PERIOD_SECONDS):
a bucket of N then refills by one request every 3600/N s, so how long the
burst takes to reach the limiter (a loaded machine, a pause) cannot change
the count. Tests of the per-second answers (Retry-After, RateLimit-Reset)
send their burst to a gateway already warmed up (connections open, keys
cached as in production), so it reaches the limiter well within the 1/N s
in which a bucket of N per second refills by one request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from holdfast.tenancy.keys import KeyRepository
from services.availability.server import AvailabilityApp
from services.booking.server import BookingApp
from tests.support.availability import eventually
from tests.support.gateway import key_for, problem_of
from tests.support.redis_server import RedisServer, script_calls
from tests.support.services import running_gateway

GatewayClient = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]
# Limits per hour: no refill while a test runs.
HOURLY = {"rate_limit_period_seconds": 3600}


@pytest.fixture
def own_gateway(
    migrated_database: str,
    booking_app: BookingApp,
    availability_app: AvailabilityApp,
    redis_server: RedisServer,
) -> GatewayClient:
    """Starts a gateway with the given settings on the test's own Redis, and
    yields a client of it."""

    @asynccontextmanager
    async def start(**overrides: object) -> AsyncIterator[httpx.AsyncClient]:
        settings = {"redis_url": redis_server.url, "key_cache_seconds": 10, **overrides}
        async with (
            running_gateway(
                migrated_database,
                f"127.0.0.1:{booking_app.port}",
                f"127.0.0.1:{availability_app.port}",
                **settings,
            ) as gateway,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}", timeout=10) as api,
        ):
            # Connections to Redis and the services open, the script loaded.
            assert (await api.get("/readyz")).status_code == 200
            yield api

    return start


async def burst(api: httpx.AsyncClient, *auths: dict[str, str]) -> list[httpx.Response]:
    """One request per `auths` entry, all at once."""
    return list(await asyncio.gather(*(api.get("/v1/resources", headers=a) for a in auths)))


def statuses(answers: list[httpx.Response]) -> list[int]:
    return sorted(r.status_code for r in answers)


def unchecked(metrics_text: str) -> float:
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == "holdfast_gateway_rate_limit_unchecked_total":
                return sample.value
    raise AssertionError("holdfast_gateway_rate_limit_unchecked_total is not exported")


async def test_a_key_gets_exactly_its_burst_then_429(
    own_gateway: GatewayClient, keys: KeyRepository, tenant: str
) -> None:
    auth = await key_for(keys, tenant, rate_per_second=5)
    async with own_gateway(rate_limit_per_address=1000) as api:
        answers = await burst(api, *[auth] * 8)

    allowed = [r for r in answers if r.status_code == 200]
    refused = [r for r in answers if r.status_code != 200]
    assert statuses(answers) == [200] * 5 + [429] * 3, [r.text for r in answers]
    assert [r.headers["RateLimit-Limit"] for r in allowed] == ["5"] * 5
    # Each allowed request says how many are left: 4, 3, 2, 1, 0 in some order.
    assert sorted(r.headers["RateLimit-Remaining"] for r in allowed) == ["0", "1", "2", "3", "4"]
    assert all(int(r.headers["RateLimit-Reset"]) == 1 for r in allowed)
    assert not any("Retry-After" in r.headers for r in allowed)
    for response in refused:
        problem_of(response, 429, "RATE_LIMITED")
        assert response.headers["RateLimit-Limit"] == "5"
        assert response.headers["RateLimit-Remaining"] == "0"
        assert int(response.headers["RateLimit-Reset"]) == 1
        # One request is let through every 200 ms: the next within a second.
        assert response.headers["Retry-After"] == "1"


async def test_a_spent_key_is_let_through_again_after_retry_after(
    own_gateway: GatewayClient, keys: KeyRepository, tenant: str
) -> None:
    auth = await key_for(keys, tenant, rate_per_second=1)
    async with own_gateway(rate_limit_per_address=1000) as api:
        spent = await burst(api, auth, auth)
        refused = next(r for r in spent if r.status_code == 429)
        wait = int(refused.headers["Retry-After"])

        async def again() -> httpx.Response:
            return await api.get("/v1/resources", headers=auth)

        # Waiting as told is enough (polling sooner is refused, which is fine).
        back = await eventually(again, lambda r: r.status_code == 200, within=wait + 5)

    assert statuses(spent) == [200, 429]
    assert back.headers["RateLimit-Remaining"] == "0"


async def test_the_gateway_default_applies_to_keys_without_their_own_rate(
    own_gateway: GatewayClient, keys: KeyRepository, tenant: str
) -> None:
    auth = await key_for(keys, tenant)
    async with own_gateway(rate_limit_per_key=3, rate_limit_per_address=1000, **HOURLY) as api:
        answers = await burst(api, *[auth] * 5)

    assert statuses(answers) == [200, 200, 200, 429, 429]
    assert {r.headers["RateLimit-Limit"] for r in answers} == {"3"}


async def test_two_keys_have_separate_budgets(
    own_gateway: GatewayClient, keys: KeyRepository, tenant: str
) -> None:
    # A key's own rate counts in the gateway's period too: 3 an hour here.
    first = await key_for(keys, tenant, rate_per_second=3)
    second = await key_for(keys, tenant, rate_per_second=3)
    async with own_gateway(rate_limit_per_address=1000, **HOURLY) as api:
        spent = await burst(api, *[first] * 4)
        *fresh, still_spent = await burst(api, *[second] * 3, first)

    assert statuses(spent) == [200, 200, 200, 429]
    assert statuses(fresh) == [200, 200, 200]
    assert sorted(r.headers["RateLimit-Remaining"] for r in fresh) == ["0", "1", "2"]
    assert still_spent.status_code == 429


async def test_an_address_is_limited_across_keys_and_before_authentication(
    own_gateway: GatewayClient, keys: KeyRepository, tenant: str
) -> None:
    first = await key_for(keys, tenant)
    second = await key_for(keys, tenant)
    nobody: dict[str, str] = {}
    async with own_gateway(rate_limit_per_address=4, rate_limit_per_key=1000, **HOURLY) as api:
        answers = await burst(api, first, first, second, second, nobody, nobody)

    limited = [r for r in answers if r.status_code == 429]
    assert len(limited) == 2, statuses(answers)
    for response in limited:
        body = problem_of(response, 429, "RATE_LIMITED")
        assert "address" in body["detail"]
        assert response.headers["RateLimit-Limit"] == "4"
        # 4 an hour: the next request is let through a quarter of an hour on.
        assert 800 < int(response.headers["Retry-After"]) <= 900
    # The others passed the address check: a key gets its answer, no key a 401.
    for auth, response in zip([first, first, second, second, nobody, nobody], answers, strict=True):
        if response.status_code != 429:
            assert response.status_code == (200 if auth else 401), response.text


async def test_with_redis_down_and_failing_open_requests_pass_and_are_counted(
    own_gateway: GatewayClient, keys: KeyRepository, tenant: str, redis_server: RedisServer
) -> None:
    auth = await key_for(keys, tenant, rate_per_second=2)
    async with own_gateway(rate_limit_when_redis_down="open") as api:
        before = unchecked((await api.get("/metrics")).text)
        redis_server.kill()
        answers = await burst(api, *[auth] * 5)  # more than the key's burst of 2
        after = unchecked((await api.get("/metrics")).text)
        ready = await api.get("/readyz")

    assert [r.status_code for r in answers] == [200] * 5, [r.text for r in answers]
    assert after - before >= 5
    # Still ready: failing open, it serves without Redis; the check says why.
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"
    assert ready.json()["checks"]["redis"]["status"] == "down"


async def test_with_redis_down_and_failing_closed_requests_get_503(
    own_gateway: GatewayClient, keys: KeyRepository, tenant: str, redis_server: RedisServer
) -> None:
    auth = await key_for(keys, tenant)
    async with own_gateway(rate_limit_when_redis_down="closed") as api:
        up = await api.get("/v1/resources", headers=auth)
        redis_server.kill()
        down = await api.get("/v1/resources", headers=auth)
        metrics = await api.get("/metrics")
        ready = await api.get("/readyz")

    assert up.status_code == 200, up.text
    problem_of(down, 503, "RATE_LIMIT_UNAVAILABLE")
    assert ready.status_code == 503  # failing closed, it cannot serve without Redis
    assert ready.json()["status"] == "unhealthy"
    assert down.headers["Retry-After"] == "1"
    assert unchecked(metrics.text) >= 1


async def test_a_known_key_is_limited_by_address_and_key_in_one_round_trip(
    own_gateway: GatewayClient, keys: KeyRepository, tenant: str, redis_server: RedisServer
) -> None:
    auth = await key_for(keys, tenant)
    redis = Redis.from_url(redis_server.url)

    try:
        async with own_gateway(rate_limit_per_address=1000, **HOURLY) as api:
            first = await api.get("/v1/resources", headers=auth)  # reads the key: cached
            before = await script_calls(redis)
            answers = [await api.get("/v1/resources", headers=auth) for _ in range(5)]
            after = await script_calls(redis)
    finally:
        await redis.aclose()

    assert first.status_code == 200, first.text
    assert [a.status_code for a in answers] == [200] * 5
    # Both buckets counted (the key's headers are the ones sent back) ...
    assert [a.headers["RateLimit-Remaining"] for a in answers] == ["48", "47", "46", "45", "44"]
    # ... by one script call each.
    assert after - before == 5
