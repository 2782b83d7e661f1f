"""What every part of the repository shares: the error translation and the
scope (tenant, actor, trace) a transaction's statements are written in."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from holdfast.platform.db import database_unavailable, is_recovery_conflict
from holdfast.platform.errors import aborted
from holdfast.platform.telemetry import current_traceparent


@asynccontextmanager
async def database_errors() -> AsyncIterator[None]:
    """Translates database failures into the domain's error model."""
    async with database_unavailable():
        try:
            yield
        except asyncpg.LockNotAvailableError:
            raise aborted("LOCK_TIMEOUT", "the slots are busy; retry shortly", 0.2) from None
        except (asyncpg.SerializationError, asyncpg.DeadlockDetectedError) as error:
            if is_recovery_conflict(error):
                raise  # a standby's, not a client's: database_unavailable maps it
            raise aborted("CONCURRENT_UPDATE", "a concurrent change won; retry", 0.1) from None
        except asyncpg.CheckViolationError:
            # The CHECK constraints are the second line of defence; reaching
            # them means a concurrent change raced a decision. Nothing was written.
            raise aborted(
                "CAPACITY_CONFLICT", "capacity changed concurrently; retry", 0.1
            ) from None


def as_json(value: dict[str, Any]) -> str:
    return json.dumps(value, default=str)


class TransactionScope:
    """One open transaction on behalf of a tenant and an actor. The statement
    groups (holds, slots, refunds, ...) each extend it; `Transaction` is all
    of them together."""

    def __init__(self, conn: asyncpg.Connection, tenant_id: str, actor: str) -> None:
        self._conn = conn
        self.tenant_id = tenant_id
        self.actor = actor
        # Stored on the outbox rows, so the invalidation links to this request's trace.
        self.traceparent = current_traceparent()

    def savepoint(self) -> asyncpg.transaction.Transaction:
        """A savepoint: what runs inside it is undone, alone, if it raises."""
        return self._conn.transaction()


class PoolScope:
    """Reads and self-contained writes on the pool. `_after_commit` is called
    after a committed write that may have left outbox rows to publish."""

    _after_commit: Callable[[], None]

    def __init__(self, pool: asyncpg.Pool, after_commit: Callable[[], None] | None = None) -> None:
        self._pool = pool
        self._after_commit = after_commit or (lambda: None)
