"""A hot standby cancelling a query for replay.

The test runs a standby of its own Postgres (tests/support/postgres_server.py);
the query it cancels is UNAVAILABLE, not INTERNAL nor ABORTED.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from holdfast.platform.db import database_error
from holdfast.platform.errors import ErrorKind
from tests.support.availability import eventually
from tests.support.postgres_server import PostgresServer

RECOVERY_CONFLICT_MESSAGE = "canceling statement due to conflict with recovery"


async def test_a_query_a_standby_cancels_for_replay_is_unavailable(
    postgres_server: PostgresServer, own_postgres_url: str
) -> None:
    """Availability may read from a replica. A standby that must replay a
    change conflicting with a running query cancels the query: SQLSTATE 40001,
    the code of a serialization failure, but no client conflict; retried a
    moment later it works. It is UNAVAILABLE, not INTERNAL nor ABORTED."""
    standby = await PostgresServer.standby_of(postgres_server, {"max_standby_streaming_delay": "0"})
    try:
        replica_url = standby.url("holdfast")

        async def replica_has_slots() -> bool:
            try:
                conn = await asyncpg.connect(replica_url, timeout=5)
            except (OSError, asyncpg.PostgresError):
                return False
            try:
                return bool(await conn.fetchval("SELECT to_regclass('slots') IS NOT NULL"))
            finally:
                await conn.close()

        await eventually(replica_has_slots, bool, within=30)
        reader = await asyncpg.connect(replica_url, timeout=5)
        primary = await asyncpg.connect(own_postgres_url, timeout=5)
        try:
            long_read = asyncio.create_task(
                reader.fetchval("SELECT count(*) FROM slots, pg_sleep(30)")
            )

            async def reading() -> int:
                count: int = await primary.fetchval("SELECT 1")  # the primary is fine
                watcher = await asyncpg.connect(replica_url, timeout=5)
                try:
                    count = await watcher.fetchval(
                        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%'"
                        " AND state = 'active' AND pid <> pg_backend_pid()"
                    )
                finally:
                    await watcher.close()
                return count

            await eventually(reading, lambda n: n == 1, within=30)
            # Replayed on the standby, this lock conflicts with the read's.
            async with primary.transaction():
                await primary.execute("LOCK TABLE slots IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(asyncpg.PostgresError) as cancelled:
                await long_read
            again = await reader.fetchval("SELECT count(*) FROM slots")
        finally:
            await reader.close()
            await primary.close()
    finally:
        await standby.close()

    error = cancelled.value
    assert (error.sqlstate, error.message) == ("40001", RECOVERY_CONFLICT_MESSAGE)
    mapped = database_error(error)
    assert mapped is not None
    assert (mapped.kind, mapped.reason) == (ErrorKind.UNAVAILABLE, "DATABASE_UNAVAILABLE")
    assert again == 0  # the same connection reads again at once
