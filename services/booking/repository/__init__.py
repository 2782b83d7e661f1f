"""All of the booking service's SQL, one module per thing stored.

Every query runs on a pool whose connections carry a client-side command
timeout and server-side `statement_timeout` and `lock_timeout` (see
`holdfast.platform.db`), so no call here can wait without bound. Database
failures leave the repository as domain errors (see `base.database_errors`):
lock timeouts, deadlocks and serialization failures as ABORTED with a retry
hint, an unreachable or overloaded database as UNAVAILABLE.

- `inventory`: resources and slots; `units`: windowed resources' rules,
  units and hours; `window_changes`: the audit and outbox rows of their
  changes; `windows`: holds' windows on units, which the exclusion
  constraint keeps apart; `window_holds`: what a hold on a window reads of
  its resource and the hold's own rows; `holds` and `hold_changes`: holds and their
  transitions (with the lock order); `placement`: a new hold on slots in one
  statement; `checkouts` and `refunds`: the payment side; `idempotency`:
  request ids; `outbox`: what the relay and the payment
  actions take; `sql`: the audit and outbox rows every writer adds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from services.booking.domain import DueCheckout, SlotPreview
from services.booking.repository.base import PoolScope, TransactionScope, database_errors
from services.booking.repository.checkouts import CheckoutReads, CheckoutStatements
from services.booking.repository.hold_changes import (
    HoldChangeStatements,
    HoldExpiry,
    expire_holds,
)
from services.booking.repository.holds import HoldReads, HoldStatements
from services.booking.repository.idempotency import IdempotencyReads, IdempotencyStatements
from services.booking.repository.inventory import InventoryReads, InventoryStatements
from services.booking.repository.outbox import OutboxRepository
from services.booking.repository.placement import HoldPlacement, Placement
from services.booking.repository.refunds import RefundReads, RefundStatements
from services.booking.repository.units import UnitReads, UnitStatements
from services.booking.repository.window_changes import WindowChangeStatements
from services.booking.repository.window_holds import WindowHoldReads, WindowHoldStatements
from services.booking.repository.windows import WindowStatements

__all__ = [
    "BookingRepository",
    "DueCheckout",
    "OutboxRepository",
    "PaymentRepository",
    "Placement",
    "SlotPreview",
    "Transaction",
    "database_errors",
    "expire_holds",
]


class Transaction(
    IdempotencyStatements,
    InventoryStatements,
    HoldStatements,
    HoldChangeStatements,
    CheckoutStatements,
    RefundStatements,
    UnitStatements,
    WindowChangeStatements,
    WindowStatements,
    WindowHoldStatements,
    TransactionScope,
):
    """Statements that only make sense inside one reservation-style transaction."""


class BookingRepository(
    InventoryReads,
    HoldReads,
    HoldPlacement,
    HoldExpiry,
    IdempotencyReads,
    UnitReads,
    WindowHoldReads,
    PoolScope,
):
    """Reads, and the transactions that write.

    `after_commit` runs after every committed write, which is how the outbox
    relay learns at once that there may be rows to publish.
    """

    @asynccontextmanager
    async def transaction(self, tenant_id: str, actor: str) -> AsyncIterator[Transaction]:
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            yield Transaction(conn, tenant_id, actor)
        self._after_commit()


class PaymentRepository(CheckoutReads, RefundReads, PoolScope):
    """Checkouts and refunds: the payment side of holds."""
