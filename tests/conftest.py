"""Test fixtures shared by every suite: the test database and its URL.

`make test` provides HOLDFAST_TEST_DATABASE_URL (and the Redis URL), either
from the environment or from embedded engines it starts (`holdfast testenv`).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import asyncpg
import pytest

from holdfast.migrate import migrate


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


@pytest.fixture(scope="session")
async def migrated_database(database_url: str) -> str:
    await migrate(database_url)
    return database_url


@pytest.fixture(scope="session")
async def db(migrated_database: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool for tests to check what the services wrote."""
    pool = await asyncpg.create_pool(migrated_database, min_size=1, max_size=5)
    assert pool is not None
    yield pool
    await pool.close()
