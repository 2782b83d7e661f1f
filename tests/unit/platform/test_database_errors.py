"""Which driver errors mean "the database is gone" (UNAVAILABLE, retry) and
which are the request's or the code's own (left alone: a bug stays a bug).

The real servers' errors are produced by the outage tests
(tests/integration/platform/test_database_outage*.py); this table pins down the
classification of every kind, including those hard to provoke for real.
"""

from __future__ import annotations

import asyncpg
import pytest

from holdfast.platform.db import database_error, database_unavailable, is_database_gone
from holdfast.platform.errors import DomainError, ErrorKind
from services.booking.repository import database_errors

RECOVERY_CONFLICT = "canceling statement due to conflict with recovery"

GONE = [
    asyncpg.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.CrashShutdownError("terminating connection because of crash of another server process"),
    asyncpg.CannotConnectNowError("the database system is starting up"),
    asyncpg.CannotConnectNowError("the database system is shutting down"),
    asyncpg.DatabaseDroppedError("terminating connection due to conflict with recovery"),
    asyncpg.TooManyConnectionsError("sorry, too many clients already"),
    asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.ConnectionFailureError("could not receive data from client"),
    asyncpg.ReadOnlySQLTransactionError("cannot execute INSERT in a read-only transaction"),
    asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress"),
    asyncpg.InterfaceError("connection is closed"),
    asyncpg.InterfaceError("pool is closing"),
    asyncpg.InterfaceError("cannot perform operation: connection is closed"),
    asyncpg.SerializationError(RECOVERY_CONFLICT),
    asyncpg.DeadlockDetectedError(RECOVERY_CONFLICT),
    ConnectionRefusedError(111, "Connect call failed"),
    ConnectionResetError(104, "Connection reset by peer"),
    OSError(113, "No route to host"),
    TimeoutError(),
]
NOT_GONE = [
    asyncpg.SerializationError("could not serialize access due to concurrent update"),
    asyncpg.DeadlockDetectedError("deadlock detected"),
    asyncpg.LockNotAvailableError("canceling statement due to lock timeout"),
    asyncpg.InterfaceError(
        "cannot call Connection.fetch(): connection has been released back to the pool"
    ),
    asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
    asyncpg.DataError("invalid input for query argument $1: 'x' (invalid UUID)"),
    asyncpg.UniqueViolationError("duplicate key value violates unique constraint"),
    asyncpg.CheckViolationError("new row violates check constraint"),
    asyncpg.UndefinedTableError('relation "slots" does not exist'),
    ValueError("not a database error"),
]


def _name(error: BaseException) -> str:
    return f"{type(error).__name__}({error})"


@pytest.mark.parametrize("error", GONE, ids=_name)
def test_a_database_that_is_gone_is_unavailable_with_a_retry_hint(error: BaseException) -> None:
    assert is_database_gone(error)
    mapped = database_error(error)
    assert mapped is not None
    assert (mapped.kind, mapped.reason, mapped.retry_after) == (
        ErrorKind.UNAVAILABLE,
        "DATABASE_UNAVAILABLE",
        1.0,
    )


@pytest.mark.parametrize("error", NOT_GONE, ids=_name)
def test_errors_of_the_request_or_the_code_are_left_alone(error: BaseException) -> None:
    assert not is_database_gone(error)
    assert database_error(error) is None


def test_a_statement_timeout_is_unavailable_too() -> None:
    mapped = database_error(
        asyncpg.QueryCanceledError("canceling statement due to statement timeout")
    )
    assert mapped is not None
    assert (mapped.kind, mapped.reason) == (ErrorKind.UNAVAILABLE, "DATABASE_TIMEOUT")


async def test_the_context_manager_maps_and_lets_the_rest_through() -> None:
    with pytest.raises(DomainError) as raised:
        async with database_unavailable():
            raise asyncpg.InternalClientError("cannot switch to state 15")
    assert raised.value.kind is ErrorKind.UNAVAILABLE
    with pytest.raises(asyncpg.UniqueViolationError):
        async with database_unavailable():
            raise asyncpg.UniqueViolationError("duplicate key")


@pytest.mark.parametrize(
    ("error", "kind", "reason"),
    [
        (
            asyncpg.SerializationError(RECOVERY_CONFLICT),
            ErrorKind.UNAVAILABLE,
            "DATABASE_UNAVAILABLE",
        ),
        (
            asyncpg.SerializationError("could not serialize access"),
            ErrorKind.ABORTED,
            "CONCURRENT_UPDATE",
        ),
        (
            asyncpg.DeadlockDetectedError("deadlock detected"),
            ErrorKind.ABORTED,
            "CONCURRENT_UPDATE",
        ),
        (asyncpg.LockNotAvailableError("lock timeout"), ErrorKind.ABORTED, "LOCK_TIMEOUT"),
        (
            asyncpg.AdminShutdownError("terminating connection"),
            ErrorKind.UNAVAILABLE,
            "DATABASE_UNAVAILABLE",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
async def test_booking_tells_a_standby_s_conflict_from_a_concurrent_change(
    error: Exception, kind: ErrorKind, reason: str
) -> None:
    """40001 is both "a concurrent change won" (ABORTED: retry the decision)
    and, on a hot standby, "replay needed these rows" (UNAVAILABLE)."""
    with pytest.raises(DomainError) as raised:
        async with database_errors():
            raise error
    assert (raised.value.kind, raised.value.reason) == (kind, reason)
