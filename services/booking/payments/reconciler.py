"""Asks Stripe, every so often, about what the webhooks may not have told:
payment attempts near or past lapsing, and refunds recorded but not yet made.
So a webhook that never arrived never loses a paid booking, nor keeps a
payment without one, and a crash between deciding a refund and making it at
Stripe is repaired.

Each pass takes a batch of each, claimed in the database: attempts whose
next look is due, fairly across tenants, each look pushing the next one back
exponentially, so attempts that cannot settle yet (a direct debit the bank
has not settled, Stripe out of reach) never keep the others waiting; attempts
Stripe refused end FAILED and are never looked at again. Safe with several
replicas: claims skip what another replica took, and applying a payment or
making a refund twice is a no-op.
"""

from __future__ import annotations

import logging

from holdfast.platform.errors import DomainError
from holdfast.platform.periodic import PeriodicTask
from services.booking.config import BookingSettings
from services.booking.payments.service import RECONCILER_ACTOR, Payments
from services.booking.repository import PaymentRepository

log = logging.getLogger(__name__)


class Reconciler:
    def __init__(
        self, payments: Payments, repository: PaymentRepository, settings: BookingSettings
    ) -> None:
        self._payments = payments
        self._repository = repository
        self._settings = settings
        self._task = PeriodicTask(
            "payment-reconciler",
            self.run_once,
            interval=settings.reconciler_interval_seconds,
            log=log,
            skipped="reconciliation skipped",
            failed="reconciliation failed",
        )

    async def run_once(self) -> int:
        """One pass; returns how many attempts and refunds it looked at. One
        that fails is logged and looked at again after its backoff."""
        if not self._payments.enabled:
            return 0
        s = self._settings
        batch, base, most = (
            s.reconciler_batch_size,
            s.reconciler_retry_base_seconds,
            s.reconciler_retry_max_seconds,
        )
        refunds = await self._repository.claim_due_refunds(batch, base, most)
        for refund in refunds:
            try:
                await self._payments.refunds.make(refund, RECONCILER_ACTOR)
            except DomainError as error:
                log.warning("refund of payment %s still pending: %s", refund.payment_ref, error)
        due = await self._repository.claim_due_checkouts(batch, base, most)
        for checkout in due:
            try:
                await self._payments.settle(checkout)
            except DomainError as error:
                log.warning(
                    "reconciling checkout of hold %s failed: %s", checkout.checkout.hold_id, error
                )
        return len(refunds) + len(due)

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()
