"""Test fixtures shared by every suite: the test database and its URL.

`make test` provides HOLDFAST_TEST_DATABASE_URL (and the Redis URL), either
from the environment or from embedded engines it starts (`holdfast testenv`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from redis.asyncio import Redis

from holdfast.migrate import migrate
from tests.support.env import REDIS_PREFIX, redis_url


@pytest.fixture(scope="session")
def database_url() -> str:
    url = os.environ.get("HOLDFAST_TEST_DATABASE_URL")
    if not url:
        pytest.exit(
            "HOLDFAST_TEST_DATABASE_URL is not set: run the tests with `make test`"
            " or `holdfast testenv -- pytest`",
            returncode=2,
        )
    return url


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
async def migrated_database(database_url: str) -> AsyncIterator[str]:
    """A database of this test run's own, migrated from scratch and dropped after.

    A fresh one per run means a run never sees an older run's rows or schema.
    """
    name = f"holdfast_test_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(database_url, timeout=10)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = _with_database(database_url, name)
    await migrate(url)
    yield url
    admin = await asyncpg.connect(database_url, timeout=10)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
async def db(migrated_database: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool for tests to check what the services wrote."""
    pool = await asyncpg.create_pool(migrated_database, min_size=1, max_size=5)
    assert pool is not None
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def redis() -> AsyncIterator[Redis]:
    """A client of the run's Redis; this run's keys are deleted at the end."""
    client = Redis.from_url(redis_url())
    yield client
    async for key in client.scan_iter(match=f"{REDIS_PREFIX}:*", count=1000):
        await client.unlink(key)
    await client.aclose()
