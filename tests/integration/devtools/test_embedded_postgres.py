"""The embedded Postgres that `make up` and `make test` start on a bare
machine takes the connections the stack and a benchmark open together."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg

from devtools.engines import embedded_postgres


async def _connection_limit(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SHOW max_connections"))
    finally:
        await conn.close()


def test_it_allows_300_connections_from_its_first_start(tmp_path: Path) -> None:
    # (A data folder started before keeps the setting: ALTER SYSTEM wrote it
    # into the folder.)
    with embedded_postgres(tmp_path / "pgdata", "holdfast_check") as dsn:
        limit = asyncio.run(_connection_limit(dsn))

    assert limit == 300
