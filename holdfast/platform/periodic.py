"""The loop every "do a pass every so often" background task runs: the hold
sweeper, the reconciler, the outbox upkeep, the Stripe event workers, the
dead-letter watcher, the inbox retention.

A pass that fails never ends the loop: a DomainError (the database away,
busy rows) is a warning, since the next pass catches up; anything else is
logged with its traceback, and the loop goes on all the same, so a gauge
never freezes and a sweep never stops for good. The first pass runs at once.
Stopping cancels the loop wherever it is (BackgroundTask.stop)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from holdfast.platform.background import BackgroundTask
from holdfast.platform.errors import DomainError


class PeriodicTask:
    """Runs `run_pass` every `interval` seconds, or sooner when `wake` is set.

    `wake` is cleared before each pass, so work that arrives during a pass
    wakes the loop again at once rather than after the interval. `log` is the
    caller's logger, with `skipped` (a DomainError: "<skipped>: <error>") and
    `failed` (anything else) the messages the caller has always logged.
    """

    def __init__(
        self,
        name: str,
        run_pass: Callable[[], Awaitable[object]],
        *,
        interval: float,
        log: logging.Logger,
        skipped: str,
        failed: str,
        wake: asyncio.Event | None = None,
    ) -> None:
        self._run_pass = run_pass
        self._interval = interval
        self._log = log
        self._skipped = skipped
        self._failed = failed
        self._wake = wake if wake is not None else asyncio.Event()
        self._task = BackgroundTask(name, self._run)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self._run_pass()
            except DomainError as error:
                self._log.warning(f"{self._skipped}: %s", error)
            except Exception:
                self._log.exception(self._failed)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()
