"""Expires lapsed holds every second or so, returning their capacity.

Safe with several booking replicas: each pass takes a batch of due holds with
`FOR UPDATE SKIP LOCKED`, so replicas share the work instead of contending.
"""

from __future__ import annotations

import asyncio
import logging

from holdfast.platform.background import BackgroundTask
from holdfast.platform.errors import DomainError
from services.booking.reservations import Reservations

log = logging.getLogger(__name__)


class HoldSweeper:
    def __init__(
        self,
        reservations: Reservations,
        interval: float,
        batch_size: int,
        request_id_retention_hours: int,
    ) -> None:
        self._reservations = reservations
        self._interval = interval
        self._batch_size = batch_size
        self._retention_hours = request_id_retention_hours
        self._task = BackgroundTask("hold-sweeper", self._run)

    async def sweep_once(self) -> int:
        """Expires every due hold, batch after batch, and forgets a batch of
        request ids past retention; returns how many holds expired."""
        total = 0
        while True:
            expired = await self._reservations.expire_due_holds(self._batch_size)
            total += expired
            if expired < self._batch_size:
                break
        # Request ids are kept for a day by default, like Stripe's idempotency keys.
        await self._reservations.forget_old_request_ids(self._retention_hours, self._batch_size)
        return total

    async def _run(self) -> None:
        while True:
            try:
                expired = await self.sweep_once()
                if expired:
                    log.info("expired lapsed holds", extra={"count": expired})

            except DomainError as error:
                # Busy slots or a database blip: the next pass catches up.
                log.warning("hold sweep skipped: %s", error)
            except Exception:
                log.exception("hold sweep failed")
            await asyncio.sleep(self._interval)

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()
