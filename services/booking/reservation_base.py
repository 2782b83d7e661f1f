"""What every reservation transaction starts from: the repository, the
metrics, and locking holds and slots (measured: a hot slot's lock wait is
what a slow hold is made of)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import datetime

from opentelemetry import trace

from holdfast.platform.errors import not_found
from services.booking.domain import Hold, Slot, SlotPreview
from services.booking.joined_reads import JoinedReads
from services.booking.metrics import BookingMetrics
from services.booking.repository import BookingRepository, Transaction

tracer = trace.get_tracer(__name__)
# A hold's preview read: the tenant, the slots as asked, the quantity.
PreviewKey = tuple[str, tuple[uuid.UUID, ...], int]


class ReservationBase:
    def __init__(
        self, repository: BookingRepository, metrics: BookingMetrics | None = None
    ) -> None:
        self._repo = repository
        self._metrics = metrics or BookingMetrics()
        # The preview a hold reads first; a hot slot's buyers share it (see
        # JoinedReads: never a read sent before they asked).
        self._previews: JoinedReads[PreviewKey, tuple[list[SlotPreview], datetime | None]] = (
            JoinedReads(lambda key: self._repo.preview_slots(*key))
        )

    async def get_hold(self, tenant_id: str, hold_id: uuid.UUID, what: str = "hold") -> Hold:
        hold = await self._repo.get_hold(tenant_id, hold_id)
        if hold is None:
            raise not_found(what, str(hold_id))
        return hold

    async def _lock_slots(
        self, tx: Transaction, slot_ids: Sequence[uuid.UUID]
    ) -> tuple[list[Slot], datetime]:
        """Waits for the slots' row locks: measured, since a hot slot's wait
        is what a slow hold is made of."""
        started = time.perf_counter()
        with tracer.start_as_current_span("booking.lock_slots") as span:
            try:
                return await tx.lock_slots(slot_ids)
            finally:
                waited = time.perf_counter() - started
                self._metrics.lock_wait.observe(waited)
                span.set_attribute("holdfast.lock_wait_ms", round(waited * 1e3, 3))

    @staticmethod
    async def _lock_hold(tx: Transaction, hold_id: uuid.UUID, what: str) -> Hold:
        hold = await tx.lock_hold(hold_id)
        if hold is None:
            raise not_found(what, str(hold_id))
        return hold
