"""Test fixtures shared by every suite: the test database and its URL.

`make test` provides HOLDFAST_TEST_DATABASE_URL (and the Redis URL), either
from the environment or from embedded engines it starts (`python -m devtools testenv`).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
from redis.asyncio import Redis

from holdfast.migrate import migrate
from tests.support import env
from tests.support.env import REDIS_PREFIX
from tests.support.postgres_server import PostgresServer
from tests.support.redis_server import RedisServer


@pytest.fixture(scope="session")
def database_url() -> str:
    return env.database_url()


# Per server (its URL), a database migrated once this run, which each new
# database copies (CREATE DATABASE ... TEMPLATE): a copy takes a fraction of
# the time migrating takes. Nothing connects to it once it is migrated (a
# database cannot be copied while it has sessions).
_templates: dict[str, str] = {}


async def _migrated_template(database_url: str) -> str:
    if database_url not in _templates:
        name = f"holdfast_test_template_{uuid.uuid4().hex[:10]}"
        admin = await asyncpg.connect(database_url, timeout=10)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        await migrate(env.with_database(database_url, name))
        _templates[database_url] = name
    return _templates[database_url]


@pytest.fixture(scope="session", autouse=True)
async def _drop_templates() -> AsyncIterator[None]:
    yield
    for database_url, name in _templates.items():
        admin = await asyncpg.connect(database_url, timeout=10)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@asynccontextmanager
async def fresh_database(database_url: str) -> AsyncIterator[str]:
    """A new database, migrated (a copy of one migrated from scratch this
    run), dropped afterwards."""
    name = f"holdfast_test_{uuid.uuid4().hex[:10]}"
    template = await _migrated_template(database_url)
    admin = await asyncpg.connect(database_url, timeout=10)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await admin.close()
    url = env.with_database(database_url, name)
    try:
        yield url
    finally:
        admin = await asyncpg.connect(database_url, timeout=10)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


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
