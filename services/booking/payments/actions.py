"""Carries out the outbox's payment actions at Stripe, apart from the relay.

A hold that lapses or is released with its checkout open writes, in the same
transaction, an availability message and a payments-topic row: "expire this
checkout session at Stripe". The relay publishes the message (Postgres and
Redis only); this runs the action, with the row's dedupe key as Stripe's
idempotency key. The two never wait for each other, so a slow or unreachable
Stripe delays only the actions, never an invalidation.

Up to `payment_action_concurrency` actions run at once, each claimed under a
lease (`payment_action_lease_seconds`) and given up after
`payment_action_timeout_seconds` (shorter than the lease, so no other replica
starts it meanwhile). An action Stripe
did not answer is rescheduled with backoff, and while Stripe keeps failing no
new action starts until a growing pause has passed: a Stripe outage costs a
few calls, not one per row per poll. On stop, calls in flight get the
shutdown grace; those still unanswered are given back, due at once, for
another replica (or the next start) to repeat under the same idempotency key.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable

from holdfast.platform.errors import DomainError, ErrorKind, unavailable
from holdfast.platform.periodic import PeriodicTask
from holdfast.platform.streams import ChangeMessage
from holdfast.platform.telemetry import working_in
from services.booking.config import BookingSettings
from services.booking.domain import OutboxRow
from services.booking.metrics import BookingMetrics
from services.booking.outbox.relay import outbox_message, publish_span
from services.booking.repository import OutboxRepository

log = logging.getLogger(__name__)

# Carries out one payments-topic row at Stripe (see services.booking.payments.service).
PaymentAction = Callable[[ChangeMessage], Awaitable[None]]


class PaymentActions:
    def __init__(
        self,
        outbox: OutboxRepository,
        settings: BookingSettings,
        metrics: BookingMetrics,
        action: PaymentAction,
    ) -> None:
        self._outbox = outbox
        self._settings = settings
        self._metrics = metrics
        self._action = action
        self._running: dict[int, asyncio.Task[None]] = {}
        # Set when an action ends: its place can take the next due one.
        self._place_freed = asyncio.Event()
        # Consecutive actions Stripe did not answer, and until when (loop
        # time) no new one starts because of them.
        self._failures = 0
        self._paused_until = 0.0
        # Looked for again every poll interval, and whenever a place frees up
        # (more may be due than there were places).
        self._task = PeriodicTask(
            "payment-actions",
            self.start_due,
            interval=settings.payment_action_poll_interval_seconds,
            log=log,
            skipped="payment actions: database unavailable",
            failed="payment actions failed",
            wake=self._place_freed,
        )

    async def start_due(self) -> int:
        """Claims as many due actions as there are free places and starts
        them; returns how many it started."""
        s = self._settings
        free = s.payment_action_concurrency - len(self._running)
        if free <= 0 or asyncio.get_running_loop().time() < self._paused_until:
            return 0
        rows = await self._outbox.claim_due_actions(free, s.payment_action_lease_seconds)
        for row in rows:
            row_id: int = row.id
            task = asyncio.create_task(self._carry_out(row), name=f"payment-action-{row_id}")
            self._running[row_id] = task
            task.add_done_callback(functools.partial(self._ended, row_id))
        return len(rows)

    def _ended(self, row_id: int, _: asyncio.Task[None]) -> None:
        self._running.pop(row_id, None)
        self._place_freed.set()

    async def _carry_out(self, row: OutboxRow) -> None:
        try:
            error = await self._attempt(row)
            if error is None:
                self._failures = 0
                await self._record(row, "done")
            elif error.kind is ErrorKind.UNAVAILABLE:
                await self._retry_later(row, error)
            else:
                # Nothing a retry would change (e.g. payments turned off).
                log.warning("payment action %s dropped: %s", row.dedupe_key, error)
                await self._record(row, "dropped")
        except DomainError as db_error:
            # The outcome is not recorded: the row is tried again after its lease.
            log.warning("payment action %s not recorded: %s", row.dedupe_key, db_error)

    async def _attempt(self, row: OutboxRow) -> DomainError | None:
        """Runs the action; None if it was done, else why not."""
        s = self._settings
        try:
            async with asyncio.timeout(s.payment_action_timeout_seconds):
                with working_in(publish_span(row), row.correlation_id):
                    await self._action(outbox_message(row))
        except DomainError as error:
            return error
        except TimeoutError:
            return unavailable(
                "PAYMENT_PROVIDER_UNAVAILABLE",
                f"Stripe did not answer within {s.payment_action_timeout_seconds:g} s",
            )
        except Exception as error:
            log.exception("payment action %s failed", row.dedupe_key)
            return unavailable("PAYMENT_ACTION_FAILED", f"{type(error).__name__}: {error}")
        return None

    async def _record(self, row: OutboxRow, outcome: str) -> None:
        await self._outbox.mark_published([row.id])
        self._metrics.payment_actions.labels(outcome).inc()

    async def _retry_later(self, row: OutboxRow, error: DomainError) -> None:
        s = self._settings
        self._failures += 1
        pause = min(
            s.payment_action_retry_max_seconds,
            s.payment_action_retry_base_seconds * 2 ** min(self._failures - 1, 30),
        )
        self._paused_until = asyncio.get_running_loop().time() + pause
        if self._failures == 1:
            log.warning("payment actions: Stripe failing, pausing new ones: %s", error)
        self._metrics.payment_actions.labels("retried").inc()
        await self._outbox.mark_failed(
            [row.id],
            f"{error.reason}: {error.message}",
            s.payment_action_retry_base_seconds,
            s.payment_action_retry_max_seconds,
        )

    def start(self) -> None:
        self._task.start()

    async def stop(self, grace_seconds: float) -> None:
        """Starts nothing new; gives the calls in flight `grace_seconds` to
        end, then cancels the rest and gives their rows back, due at once."""
        await self._task.stop()
        running = dict(self._running)
        if not running:
            return
        _, unfinished = await asyncio.wait(running.values(), timeout=grace_seconds)
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)
        cut_short = [row_id for row_id, task in running.items() if task in unfinished]
        if cut_short:
            log.warning("payment actions: %d calls to Stripe cut short by the stop", len(cut_short))
            with contextlib.suppress(DomainError, TimeoutError):
                async with asyncio.timeout(2.0):
                    await self._outbox.release(cut_short)
