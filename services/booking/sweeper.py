"""Expires lapsed holds every second or so, returning their capacity.

Safe with several booking replicas: each pass takes a batch of due holds with
`FOR UPDATE SKIP LOCKED`, so replicas share the work instead of contending.
"""

from __future__ import annotations

import logging

from holdfast.platform.periodic import PeriodicTask
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
        self._batch_size = batch_size
        self._retention_hours = request_id_retention_hours
        self._task = PeriodicTask(
            "hold-sweeper",
            self._sweep,
            interval=interval,
            log=log,
            # Busy slots or a database blip: the next pass catches up.
            skipped="hold sweep skipped",
            failed="hold sweep failed",
        )

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

    async def _sweep(self) -> None:
        expired = await self.sweep_once()
        if expired:
            log.info("expired lapsed holds", extra={"count": expired})

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()
