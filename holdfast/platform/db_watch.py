"""Whether a service's database answers, for its readiness (and its pool).

A watcher pings the database (`SELECT 1`) every HOLDFAST_DB_HEALTH_INTERVAL_SECONDS
on a connection of its own, so a busy pool never looks like an outage; each
ping is bounded by that interval (a second at least). After the database has failed every
ping for HOLDFAST_DB_UNREADY_AFTER_SECONDS it reports it unavailable (the
service then turns its readiness NOT_SERVING); the first ping answered again
reports it back. A blip shorter than that changes nothing.

It also looks after the service's pool: when pings start failing, and when
they succeed again, the pool's connections are expired, so no request is
handed a connection that broke during the outage (or one that silently
died, which would otherwise wait for its command timeout).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import asyncpg
from prometheus_client import CollectorRegistry, Gauge

from holdfast.platform.background import BackgroundTask
from holdfast.platform.config import PlatformSettings
from holdfast.platform.db import is_database_gone

log = logging.getLogger(__name__)

OnChange = Callable[[bool], Awaitable[None]]


class DatabaseWatcher:
    def __init__(
        self,
        settings: PlatformSettings,
        application_name: str,
        on_change: OnChange | None = None,
        *,
        dsn: str | None = None,
        pool: Callable[[], asyncpg.Pool | None] = lambda: None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._dsn = dsn or settings.database_url
        self._name = f"{application_name}-health"
        self._interval = settings.db_health_interval_seconds
        # A ping gets a second at least: on a busy host a connect alone can
        # take longer than a short interval.
        self._timeout = max(self._interval, 1.0)
        self._unready_after = settings.db_unready_after_seconds
        self._on_change = on_change
        self._pool = pool
        self._connection: asyncpg.Connection | None = None
        self._failing_since: float | None = None
        self._task = BackgroundTask("database-watcher", self._run)
        # False once the database has been unreachable long enough.
        self.available = True
        self._up = Gauge(
            "holdfast_db_up",
            "1 while the service's database answers its health ping, 0 while it does not",
            registry=registry,
        )
        self._up.set(1)

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()
        if self._connection is not None:
            self._connection.terminate()
            self._connection = None

    async def check_once(self) -> None:
        """One ping, and what follows from it."""
        answered = await self._ping()
        self._up.set(1 if answered else 0)
        now = time.monotonic()
        if answered:
            if self._failing_since is not None:
                log.warning(
                    "database answers again after %.1f s",
                    now - self._failing_since,
                    extra={"outage_seconds": round(now - self._failing_since, 3)},
                )
                self._failing_since = None
                await self._expire_pool()
            if not self.available:
                self.available = True
                if self._on_change is not None:
                    await self._on_change(True)
            return
        if self._failing_since is None:
            self._failing_since = now
            await self._expire_pool()
        if self.available and now - self._failing_since >= self._unready_after:
            log.error(
                "database unreachable for %.1f s: the service is not ready",
                now - self._failing_since,
            )
            self.available = False
            if self._on_change is not None:
                await self._on_change(False)

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.check_once()
            except Exception:
                log.exception("database health check failed")
            await asyncio.sleep(max(0.0, self._interval - (time.monotonic() - started)))

    async def _ping(self) -> bool:
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can
            # swallow a cancellation that races its timeout.
            async with asyncio.timeout(self._timeout):
                if self._connection is None or self._connection.is_closed():
                    self._connection = await asyncpg.connect(
                        self._dsn, server_settings={"application_name": self._name}
                    )
                await self._connection.fetchval("SELECT 1")
        except Exception as error:
            if self._connection is not None:
                self._connection.terminate()
                self._connection = None
            if self._failing_since is None:
                # Once per outage; anything but an outage (a wrong password,
                # say) is worth its traceback.
                log.warning(
                    "database health ping failed: %s: %s",
                    type(error).__name__,
                    error,
                    exc_info=not is_database_gone(error),
                )
            return False
        return True

    async def _expire_pool(self) -> None:
        pool = self._pool()
        if pool is not None:
            await pool.expire_connections()
