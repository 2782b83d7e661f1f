"""Applies the ordered SQL migrations in holdfast/migrations (`holdfast migrate`).

Each file `NNNN_name.sql` runs once, in its own transaction, and is recorded in
`schema_migrations`. An advisory lock makes concurrent runs (several pods
starting at once) wait for each other instead of racing, so running the
command again is always safe.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

import asyncpg

# Arbitrary but fixed: the key of the advisory lock that serialises migrators.
_MIGRATION_LOCK_KEY = 7_262_310_401


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available_migrations() -> list[Migration]:
    folder = resources.files("holdfast") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            number, _, rest = entry.name.partition("_")
            found.append(Migration(int(number), rest.removesuffix(".sql"), entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration numbers in {versions}")
    return found


async def migrate(dsn: str, query_timeout: float = 60.0) -> list[str]:
    """Applies what is missing; returns the names applied by this call."""
    conn = await asyncpg.connect(dsn, timeout=query_timeout)
    try:
        await conn.execute(
            "SELECT pg_advisory_lock($1)", _MIGRATION_LOCK_KEY, timeout=query_timeout
        )
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                checksum   text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            timeout=query_timeout,
        )
        rows = await conn.fetch(
            "SELECT version, checksum FROM schema_migrations", timeout=query_timeout
        )
        applied = {row["version"]: row["checksum"] for row in rows}
        done = []
        for migration in available_migrations():
            if migration.version in applied:
                if applied[migration.version] != migration.checksum:
                    raise RuntimeError(
                        f"migration {migration.version}_{migration.name} changed after it was"
                        " applied; add a new migration instead of editing an old one"
                    )
                continue
            async with conn.transaction():
                await conn.execute(migration.sql, timeout=query_timeout)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                    timeout=query_timeout,
                )
            done.append(f"{migration.version:04d}_{migration.name}")
        return done
    finally:
        await conn.close(timeout=query_timeout)
