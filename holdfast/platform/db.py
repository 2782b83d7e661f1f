"""The asyncpg pool every service uses, with explicit sizes and timeouts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from holdfast.platform.config import PlatformSettings
from holdfast.platform.errors import unavailable


async def _keep_session(connection: asyncpg.Connection) -> None:
    return None


async def create_pool(
    settings: PlatformSettings,
    application_name: str,
    *,
    dsn: str | None = None,
    extra_settings: dict[str, str] | None = None,
) -> asyncpg.Pool:
    """A pool whose every query is bounded on both ends: client and server.

    `extra_settings` are further session settings, e.g. the booking service's
    `lock_timeout`, set once per connection rather than per transaction.
    """
    pool = await asyncpg.create_pool(
        dsn or settings.database_url,
        # The services never change session state (no SET, LISTEN or advisory
        # locks on pooled connections), so the reset query asyncpg runs on every
        # release would only cost a round trip per call.
        reset=_keep_session,
        min_size=settings.db_pool_min_size,
        max_size=settings.db_pool_max_size,
        timeout=settings.db_connect_timeout_seconds,
        command_timeout=settings.db_command_timeout_seconds,
        server_settings={
            "application_name": application_name,
            "statement_timeout": str(settings.db_statement_timeout_ms),
            # Never leave a transaction open holding locks if a client stalls.
            "idle_in_transaction_session_timeout": "30000",
            **(extra_settings or {}),
        },
    )
    assert pool is not None
    return pool


@asynccontextmanager
async def database_unavailable() -> AsyncIterator[None]:
    """Turns an unreachable, overloaded or too slow database into UNAVAILABLE."""
    try:
        yield
    except asyncpg.QueryCanceledError:
        raise unavailable("DATABASE_TIMEOUT", "the database did not answer in time") from None
    except (
        # SQLSTATE classes 08 (connection), 53 (insufficient resources, e.g.
        # too many connections) and 57 (operator intervention: shutdown,
        # terminated backend, cannot connect now).
        asyncpg.PostgresConnectionError,
        asyncpg.InsufficientResourcesError,
        asyncpg.OperatorInterventionError,
        asyncpg.ConnectionDoesNotExistError,
        asyncpg.InterfaceError,
        ConnectionError,
        OSError,
        TimeoutError,
    ):
        raise unavailable("DATABASE_UNAVAILABLE", "the database is unavailable") from None
