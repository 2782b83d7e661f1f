"""The rate limiter checks the requests that arrive together in one script
call, each decided exactly as if it were alone (on a Redis of the test's
own, whose command counts are the test's alone)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.ratelimit import RateLimiter
from tests.support.redis_server import RedisServer, script_calls

HOURLY_MS = 3600.0  # no refill while a test runs


@pytest.fixture
async def own_redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


async def test_requests_arriving_together_are_decided_exactly_in_one_script_call(
    own_redis: Redis,
) -> None:
    limiter = RateLimiter(own_redis, "t", period_seconds=HOURLY_MS)
    await limiter.check("warm-up", 1)  # the script loaded
    before = await script_calls(own_redis)

    answers = await asyncio.gather(*(limiter.check("key:a", 30) for _ in range(50)))

    assert await script_calls(own_redis) - before == 1
    allowed = [d for d in answers if d.allowed]
    assert len(allowed) == 30
    # Each allowed request saw the bucket as the ones before it left it.
    assert sorted(d.remaining for d in allowed) == list(range(30))
    assert all(d.retry_after > 0 for d in answers if not d.allowed)


async def test_a_refusal_ends_its_own_requests_checks_only(own_redis: Redis) -> None:
    limiter = RateLimiter(own_redis, "t", period_seconds=HOURLY_MS)
    await limiter.check("address:spent", 1)  # its one request is used up

    spent, fine = await asyncio.gather(
        limiter.check_all([("address:spent", 1), ("key:x", 5)]),
        limiter.check_all([("address:other", 5), ("key:x", 5)]),
    )

    # The refused request stops at its address: its key is not counted ...
    assert [d.allowed for d in spent] == [False]
    # ... so the other request is the key's first.
    assert [d.allowed for d in fine] == [True, True]
    assert fine[1].remaining == 4


async def test_a_batch_that_redis_cannot_answer_fails_each_caller(
    redis_server: RedisServer, own_redis: Redis
) -> None:
    limiter = RateLimiter(own_redis, "t", period_seconds=HOURLY_MS)
    await limiter.check("warm-up", 1)
    redis_server.kill()

    answers = await asyncio.gather(
        *(limiter.check("key:a", 30) for _ in range(5)), return_exceptions=True
    )

    assert all(isinstance(a, RedisError) for a in answers), answers
    # Each caller raises an error of its own, not one shared object.
    assert len({id(a) for a in answers}) == 5
    # And the limiter asks again for the next request (Redis is still down).
    with pytest.raises(RedisError):
        await limiter.check("key:a", 30)
