"""Fixtures for the platform's integration tests."""

from __future__ import annotations

import pytest

from tests.support.postgres_server import PostgresServer


@pytest.fixture
async def own_postgres_url(postgres_server: PostgresServer) -> str:
    """A migrated database on the test's own Postgres."""
    return await postgres_server.create_database("holdfast", migrated=True)
