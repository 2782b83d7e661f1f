"""Asks Stripe about checkouts near or past lapsing, every so often, so that
a webhook that never arrived never loses a paid booking (nor keeps a payment
without one). Safe with several replicas: applying a payment twice is a no-op."""

from __future__ import annotations

import asyncio
import logging

from holdfast.platform.background import BackgroundTask
from holdfast.platform.errors import DomainError
from services.booking.payments import Payments

log = logging.getLogger(__name__)


class Reconciler:
    def __init__(self, payments: Payments, interval: float) -> None:
        self._payments = payments
        self._interval = interval
        self._task = BackgroundTask("payment-reconciler", self._run)

    async def _run(self) -> None:
        while True:
            try:
                await self._payments.reconcile_once()
            except DomainError as error:
                log.warning("reconciliation skipped: %s", error)
            except Exception:
                log.exception("reconciliation failed")
            await asyncio.sleep(self._interval)

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()
