"""Keeps the outbox small and its gauges current, apart from the relay.

Published rows are kept `outbox_retention_seconds` for operators, then
deleted. Each pass deletes batch after batch until less than a batch is
left, so pruning keeps up with any write rate the database can take (a
booking service writes two or more rows per hold, at hundreds of holds a
second); a pass stops after one prune interval's time and the next one goes
on, so a long backlog is worked off without one statement or transaction
running long. Replicas prune at once without meeting (SKIP LOCKED).

Neither pruning nor counting ever runs in the relay's loop: a pass of
deletes must not delay an invalidation.
"""

from __future__ import annotations

import asyncio
import logging

from holdfast.platform.periodic import PeriodicTask
from services.booking.config import BookingSettings
from services.booking.metrics import BookingMetrics
from services.booking.repository import OutboxRepository

log = logging.getLogger(__name__)

# The backlog gauges are refreshed this often.
BACKLOG_INTERVAL_SECONDS = 1.0


class OutboxUpkeep:
    def __init__(
        self, outbox: OutboxRepository, settings: BookingSettings, metrics: BookingMetrics
    ) -> None:
        self._outbox = outbox
        self._settings = settings
        self._metrics = metrics
        self._gauges = PeriodicTask(
            "outbox-backlog",
            self.count_backlog,
            interval=BACKLOG_INTERVAL_SECONDS,
            log=log,
            skipped="outbox backlog not counted",
            # Anything else must not end the watcher either: the gauges would freeze.
            failed="outbox backlog not counted",
        )
        self._pruner = PeriodicTask(
            "outbox-pruner",
            self.prune_once,
            interval=settings.outbox_prune_interval_seconds,
            log=log,
            skipped="outbox pruning skipped",
            failed="outbox pruning failed",
        )

    async def count_backlog(self) -> None:
        pending, oldest = await self._outbox.backlog()
        self._metrics.outbox_backlog.set(pending)
        self._metrics.outbox_oldest_pending_seconds.set(oldest)
        pending, oldest = await self._outbox.actions_backlog()
        self._metrics.payment_actions_backlog.set(pending)
        self._metrics.payment_actions_oldest_pending_seconds.set(oldest)

    async def prune_once(self) -> int:
        """One pass: deletes published rows past the retention, batch after
        batch, until less than a batch is left or the pass has run for an
        interval; returns how many rows it deleted."""
        s = self._settings
        loop = asyncio.get_running_loop()
        ends = loop.time() + s.outbox_prune_interval_seconds
        total = 0
        while True:
            pruned = await self._outbox.prune_published(
                s.outbox_retention_seconds, s.outbox_prune_batch_size
            )
            total += pruned
            self._metrics.outbox_pruned.inc(pruned)
            if pruned < s.outbox_prune_batch_size or loop.time() >= ends:
                return total

    def start(self) -> None:
        self._gauges.start()
        self._pruner.start()

    async def stop(self) -> None:
        await self._pruner.stop()
        await self._gauges.stop()
