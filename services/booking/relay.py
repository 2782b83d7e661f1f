"""Publishes outbox rows to their Redis Streams: the outbox relay.

Every transaction that moves availability writes an outbox row; after it
commits, the repository wakes the relay, which claims due rows (`FOR UPDATE
SKIP LOCKED` under a lease, so several booking replicas share the work),
appends them to the stream in one pipelined round trip, and marks them
published. If Redis is down, the rows stay in Postgres and are retried with
backoff; if the relay dies between publishing and marking, the lease runs out
and the rows are published again. Delivery is therefore at-least-once, and
consumers must be (and are) idempotent.

Rows of the payments topic are not messages but actions at Stripe (expire the
checkout of a lapsed hold): the relay carries them out itself, with the row's
dedupe key as Stripe's idempotency key, so they too happen after the commit
and are retried until Stripe answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable

import asyncpg
from opentelemetry.trace import Span, SpanKind
from redis.asyncio import Redis
from redis.exceptions import RedisError

from holdfast.platform.background import BackgroundTask
from holdfast.platform.errors import DomainError, ErrorKind
from holdfast.platform.streams import PAYMENTS_TOPIC, ChangeMessage, stream_key
from holdfast.platform.telemetry import ending, start_caused_span, working_in
from services.booking.config import BookingSettings
from services.booking.metrics import BookingMetrics
from services.booking.repository import OutboxRepository

log = logging.getLogger(__name__)

# The backlog gauge is refreshed at most this often.
_BACKLOG_INTERVAL_SECONDS = 1.0
_PRUNE_BATCH = 5000


# Carries out one payments-topic row at Stripe (see services.booking.payments).
PaymentAction = Callable[[ChangeMessage], Awaitable[None]]


def _message(row: asyncpg.Record) -> ChangeMessage:
    return ChangeMessage(
        topic=row["topic"],
        message_key=row["message_key"],
        tenant_id=row["tenant_id"],
        dedupe_key=row["dedupe_key"],
        payload=json.loads(row["payload"]),
        written_at=row["created_at"],
        traceparent=row["traceparent"],
        correlation_id=row["correlation_id"],
    )


def _publish_span(row: asyncpg.Record) -> Span:
    """Publishing a row continues the trace of the change that wrote it."""
    return start_caused_span(
        f"outbox.publish {row['topic']}",
        correlation_id=row["correlation_id"],
        parent=row["traceparent"],
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "redis",
            "messaging.destination.name": row["topic"],
            "holdfast.outbox.dedupe_key": row["dedupe_key"],
            "holdfast.outbox.attempts": row["attempts"],
        },
    )


class OutboxRelay:
    def __init__(
        self,
        outbox: OutboxRepository,
        redis: Redis,
        settings: BookingSettings,
        metrics: BookingMetrics,
        payment_action: PaymentAction,
    ) -> None:
        self._payment_action = payment_action
        self._outbox = outbox
        self._redis = redis
        self._settings = settings
        self._metrics = metrics
        self._wake = asyncio.Event()
        self._task = BackgroundTask("outbox-relay", self._run)
        self._backlog_checked = 0.0
        self._pruned_at = 0.0
        # Rows published whose marking failed (the database went away in
        # between): marked first thing when it is back, rather than left to
        # their lease and published again that much later.
        self._unmarked: list[int] = []

    def wake(self) -> None:
        """Called after each committed write: there may be rows to publish."""
        self._wake.set()

    async def publish_once(self) -> int:
        """Publishes one batch of due rows; returns how many were handled.

        Stream topics go to Redis in one pipeline; payment actions are carried
        out one by one. Rows that failed are rescheduled with backoff, and a
        Redis failure is raised after that so the loop backs off too.
        """
        s = self._settings
        if self._unmarked:
            await self._outbox.mark_published(self._unmarked)
            self._unmarked = []
        rows = await self._outbox.claim_due(s.relay_batch_size, s.relay_lease_seconds)
        if not rows:
            return 0
        to_stream = [row for row in rows if row["topic"] != PAYMENTS_TOPIC]
        actions = [row for row in rows if row["topic"] == PAYMENTS_TOPIC]
        done: list[int] = []
        redis_error: RedisError | None = None
        if to_stream:
            try:
                await self._append_to_streams(to_stream)
                done += [row["id"] for row in to_stream]
            except RedisError as error:
                redis_error = error
                await self._failed([row["id"] for row in to_stream], error)
        for row in actions:
            try:
                with working_in(_publish_span(row), row["correlation_id"]):
                    await self._payment_action(_message(row))
                done.append(row["id"])
            except DomainError as error:
                if error.kind is not ErrorKind.UNAVAILABLE:
                    # Nothing a retry would change (e.g. payments turned off).
                    log.warning("payment action %s dropped: %s", row["dedupe_key"], error)
                    done.append(row["id"])
                else:
                    await self._failed([row["id"]], error)
        if done:
            self._metrics.outbox_published.inc(len(done))
            try:
                await self._outbox.mark_published(done)
            except DomainError:
                self._unmarked += done
                raise
        if redis_error is not None:
            raise redis_error
        return len(rows)

    async def _append_to_streams(self, rows: list[asyncpg.Record]) -> None:
        s = self._settings
        spans = [_publish_span(row) for row in rows]
        with ending(spans, "not published; retried later"):
            async with self._redis.pipeline(transaction=False) as pipe:
                for row in rows:
                    pipe.xadd(
                        stream_key(s, row["topic"]),
                        _message(row).to_fields(),  # type: ignore[arg-type]
                        maxlen=s.stream_max_length,
                        approximate=True,
                    )
                await pipe.execute()

    async def _failed(self, ids: list[int], error: Exception) -> None:
        s = self._settings
        self._metrics.outbox_publish_failures.inc(len(ids))
        await self._outbox.mark_failed(
            ids,
            f"{type(error).__name__}: {error}",
            s.relay_retry_base_seconds,
            s.relay_retry_max_seconds,
        )

    async def drain(self) -> int:
        """Publishes batches until no due row is left; returns how many."""
        total = 0
        while True:
            published = await self.publish_once()
            total += published
            if published < self._settings.relay_batch_size:
                return total

    async def _housekeeping(self) -> None:
        now = time.monotonic()
        if now - self._backlog_checked >= _BACKLOG_INTERVAL_SECONDS:
            self._backlog_checked = now
            pending, oldest = await self._outbox.backlog()
            self._metrics.outbox_backlog.set(pending)
            self._metrics.outbox_oldest_pending_seconds.set(oldest)
        if now - self._pruned_at >= self._settings.outbox_prune_interval_seconds:
            self._pruned_at = now
            pruned = await self._outbox.prune_published(
                self._settings.outbox_retention_seconds, _PRUNE_BATCH
            )
            self._metrics.outbox_pruned.inc(pruned)

    async def _run(self) -> None:
        s = self._settings
        retry_delay = 0.0
        while True:
            self._wake.clear()
            try:
                await self.drain()
                if retry_delay:
                    log.info("outbox relay: Redis is back, publishing again")
                retry_delay = 0.0
                await self._housekeeping()
            except RedisError as error:
                if not retry_delay:
                    log.warning("outbox relay: Redis unavailable, keeping messages: %s", error)
                retry_delay = min(
                    s.relay_retry_max_seconds, max(s.relay_retry_base_seconds, retry_delay * 2)
                )
            except DomainError as error:
                log.warning("outbox relay: database unavailable: %s", error)
                retry_delay = s.relay_retry_base_seconds
            except Exception:
                log.exception("outbox relay failed")
                retry_delay = s.relay_retry_base_seconds
            if retry_delay:
                # While Redis is down, commits do not wake the relay: each would
                # only fail again. Rows wait in Postgres, retried with backoff.
                await asyncio.sleep(retry_delay)
                continue
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow
            # a cancellation that races its timeout, and stop() would then hang.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(s.relay_poll_interval_seconds):
                    await self._wake.wait()

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        """Stops the loop, then publishes what the last calls wrote, briefly."""
        await self._task.stop()
        with contextlib.suppress(RedisError, DomainError, TimeoutError):
            async with asyncio.timeout(2.0):
                await self.drain()
