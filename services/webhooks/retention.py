"""Keeps the Stripe event inbox from growing without bound, and free of
personal data: every sweep interval it deletes applied and ignored events
past the retention, and redacts final events stored before redaction existed
(events applied since are redacted as they are applied). Both work batch
after batch until less than a batch is left; replicas sweeping at once take
different rows (SKIP LOCKED)."""

from __future__ import annotations

import logging

from holdfast.platform.periodic import PeriodicTask
from services.webhooks.config import WebhooksSettings
from services.webhooks.metrics import WebhooksMetrics
from services.webhooks.repository import EventRepository

log = logging.getLogger(__name__)

# Redaction parses and rewrites each payload in this process; deleting is one
# statement in Postgres.
REDACT_BATCH = 200
DELETE_BATCH = 5000


class InboxRetention:
    def __init__(
        self, events: EventRepository, settings: WebhooksSettings, metrics: WebhooksMetrics
    ) -> None:
        self._events = events
        self._settings = settings
        self._metrics = metrics
        self._task = PeriodicTask(
            "stripe-events-retention",
            self._sweep,
            interval=settings.stripe_event_sweep_interval_seconds,
            log=log,
            skipped="stripe event inbox not swept",
            failed="stripe event inbox sweep failed",
        )

    async def sweep_once(self) -> tuple[int, int]:
        """Returns how many events it redacted and how many it deleted."""
        redacted = deleted = 0
        # Deleting first: what goes needs no redacting.
        while True:
            count = await self._events.delete_expired(
                self._settings.stripe_event_retention_days, DELETE_BATCH
            )
            deleted += count
            self._metrics.events_deleted.inc(count)
            if count < DELETE_BATCH:
                break
        while True:
            count = await self._events.redact_final(REDACT_BATCH)
            redacted += count
            self._metrics.events_redacted.inc(count)
            if count < REDACT_BATCH:
                break
        return redacted, deleted

    async def _sweep(self) -> None:
        redacted, deleted = await self.sweep_once()
        if redacted or deleted:
            log.info("stripe event inbox swept", extra={"redacted": redacted, "deleted": deleted})

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()
