"""Databases of a test run's own: each a copy of one migrated once per run.

The fixtures in tests/conftest.py hand these out; a test that needs a
database of its own mid-test calls `fresh_database` itself."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from holdfast.migrate import migrate
from tests.support import env

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


async def drop_templates() -> None:
    """Drops the migrated databases this run copied from (at its end)."""
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
