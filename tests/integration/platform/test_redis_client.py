"""The Redis client every service makes (holdfast.platform.redis)."""

from __future__ import annotations

import asyncio

from holdfast.platform.config import PlatformSettings
from holdfast.platform.redis import create_redis
from tests.support import env


async def test_hundreds_of_concurrent_commands_wait_for_a_connection_rather_than_fail() -> None:
    # A burst of requests (1000 users at once) wanted more connections than
    # redis-py's pool allows (100), and the ones past it failed at once
    # ("Too many connections"): the availability service then answered them
    # from Postgres as if Redis were down.
    settings = PlatformSettings.model_validate(
        {"database_url": "postgresql://unused", "redis_url": env.redis_url()}
    )
    client = create_redis(settings, "holdfast-test-burst")
    try:
        # Each holds its connection for 0.1 s (nothing to pop).
        answers = await asyncio.gather(
            *(client.blpop(["holdfast-test:burst:empty"], timeout=0.1) for _ in range(300)),
            return_exceptions=True,
        )
    finally:
        await client.aclose()

    assert answers == [None] * 300
