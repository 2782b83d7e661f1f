"""The one background task a service component runs while the service is up
(the sweeper, the outbox relay, the invalidation consumer).

The tasks poll, so their library calls are not traced: a root trace per poll
would bury the requests' traces. Work a poll finds that was caused by a
request is traced again, in its own span (telemetry.working_in)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from holdfast.platform.telemetry import untraced

log = logging.getLogger(__name__)


class BackgroundTask:
    def __init__(self, name: str, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._name = name
        self._run = run
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run_untraced(), name=self._name)

    async def _run_untraced(self) -> None:
        with untraced():
            await self._run()

    async def stop(self) -> None:
        """Cancels the task and waits until it has finished.

        The cancellation is repeated until it takes: on Python 3.11 a
        cancellation that races a timeout inside the task (in asyncio or in a
        client library) can be swallowed, and a single cancel() would then
        leave shutdown waiting forever.
        """
        if self._task is None:
            return
        task, self._task = self._task, None
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.5)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("%s had stopped with an error", self._name, exc_info=error)
