"""The asyncpg pool every service uses, with explicit sizes and timeouts, and
the one place that knows which driver errors mean the database is gone."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from holdfast.platform.config import PlatformSettings
from holdfast.platform.errors import DomainError, unavailable

log = logging.getLogger(__name__)

# What a caller is told to wait before retrying while the database is away.
RETRY_AFTER_SECONDS = 1.0


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


def is_recovery_conflict(error: BaseException) -> bool:
    """A query a hot standby cancelled because replay needed its rows or locks
    (SQLSTATE 40001, or 40P01 for a buffer-pin deadlock, with this message;
    57P04 when the database was dropped is class 57 below). Not a conflict
    between clients: the replica cannot serve it now, another try may work."""
    return isinstance(
        error, asyncpg.SerializationError | asyncpg.DeadlockDetectedError
    ) and "conflict with recovery" in str(error)


def is_database_gone(error: BaseException) -> bool:
    """Whether `error` means the database cannot be used right now: it is
    unreachable, refusing, shutting down or starting up, out of connections,
    cut off mid-call, a standby that cannot serve the query, or the client's
    connection is broken. Such a call may work a moment later, on another
    connection; nothing about the request itself was wrong."""
    if isinstance(error, asyncpg.InterfaceError):
        # "connection is closed", "pool is closing", "pool is closed"; other
        # interface errors (bad arguments, misuse) are bugs, not outages.
        return "is clos" in str(error)
    return is_recovery_conflict(error) or isinstance(
        error,
        # SQLSTATE class 08: connection exceptions, including a connection
        # that died mid-call (ConnectionDoesNotExistError).
        asyncpg.PostgresConnectionError
        # Class 57, operator intervention: admin or crash shutdown (57P01,
        # 57P02), "the database system is starting up / shutting down"
        # (57P03, CannotConnectNowError), the database dropped (57P04).
        | asyncpg.OperatorInterventionError
        # Class 53, insufficient resources: too many connections, disk full.
        | asyncpg.InsufficientResourcesError
        # A write reached a server that is (now) a standby: a failover.
        | asyncpg.ReadOnlySQLTransactionError
        # The client's view of a connection that broke under it, e.g.
        # "cannot switch to state 12; another operation (2) is in progress"
        # after the server announced its shutdown on an idle connection.
        | asyncpg.InternalClientError
        # Refused, reset, unreachable, no such host; a connect that timed out.
        | OSError
        | TimeoutError,
    )


def database_error(error: BaseException) -> DomainError | None:
    """The domain error a driver error stands for when the database, not the
    request, is at fault; None for anything else (a bug stays a bug)."""
    if isinstance(error, asyncpg.QueryCanceledError):
        # statement_timeout (57014): the database did not answer in time.
        return unavailable(
            "DATABASE_TIMEOUT", "the database did not answer in time", RETRY_AFTER_SECONDS
        )
    if is_database_gone(error):
        log.debug("database unavailable: %s: %s", type(error).__name__, error)
        return unavailable(
            "DATABASE_UNAVAILABLE", "the database is unavailable; retry", RETRY_AFTER_SECONDS
        )
    return None


@asynccontextmanager
async def database_unavailable() -> AsyncIterator[None]:
    """Turns an unreachable, overloaded or too slow database into UNAVAILABLE
    with a retry hint; every database call in the services runs inside it."""
    try:
        yield
    except Exception as error:
        mapped = database_error(error)
        if mapped is None:
            raise
        raise mapped from None
