"""Test fixtures shared by every suite: the test database and its URL.

`make test` provides HOLDFAST_TEST_DATABASE_URL (and the Redis URL), either
from the environment or from embedded engines it starts (`python -m devtools testenv`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from redis.asyncio import Redis

from tests.support import env
from tests.support.databases import drop_templates, fresh_database
from tests.support.env import REDIS_PREFIX
from tests.support.postgres_server import PostgresServer
from tests.support.redis_server import RedisServer


@pytest.fixture(scope="session")
def database_url() -> str:
    return env.database_url()


@pytest.fixture(scope="session", autouse=True)
async def _drop_templates() -> AsyncIterator[None]:
    yield
    await drop_templates()


@pytest.fixture(scope="session")
async def migrated_database(database_url: str) -> AsyncIterator[str]:
    """A database of this test run's own: a run never sees an older run's rows
    or schema."""
    async with fresh_database(database_url) as url:
        yield url


@pytest.fixture
async def own_database(database_url: str) -> AsyncIterator[str]:
    """A database of the test's own, for services that must not share their
    outbox with the run's other services (say, because they use another Redis)."""
    async with fresh_database(database_url) as url:
        yield url


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
    client = Redis.from_url(env.redis_url())
    yield client
    async for key in client.scan_iter(match=f"{REDIS_PREFIX}:*", count=1000):
        await client.unlink(key)
    await client.aclose()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of the test's own, to kill and restart (or to watch alone)."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.kill()


@pytest.fixture(scope="module")
async def _module_postgres_server() -> AsyncIterator[PostgresServer]:
    server = PostgresServer()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
async def postgres_server(_module_postgres_server: PostgresServer) -> PostgresServer:
    """A Postgres of the test module's own, started, which a test may stop and
    start again at will (the run's shared Postgres is never stopped). The next
    test finds it started again; each makes its databases anew
    (`create_database` replaces one a previous test left)."""
    if not _module_postgres_server.running:
        await _module_postgres_server.start()
    return _module_postgres_server
