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
checkout of a lapsed hold): the relay never claims them. They are carried out
by services.booking.payments.actions, apart, so that however slow Stripe is,
the relay only ever waits for Postgres and Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from opentelemetry.trace import Span, SpanKind
from redis.asyncio import Redis
from redis.exceptions import RedisError

from holdfast.platform.background import BackgroundTask
from holdfast.platform.errors import DomainError
from holdfast.platform.streams import ChangeMessage, stream_key
from holdfast.platform.telemetry import ending, start_caused_span
from services.booking.config import BookingSettings
from services.booking.domain import OutboxRow
from services.booking.metrics import BookingMetrics
from services.booking.repository import OutboxRepository

log = logging.getLogger(__name__)


def outbox_message(row: OutboxRow) -> ChangeMessage:
    return ChangeMessage(
        topic=row.topic,
        message_key=row.message_key,
        tenant_id=row.tenant_id,
        dedupe_key=row.dedupe_key,
        payload=json.loads(row.payload),
        written_at=row.created_at,
        traceparent=row.traceparent,
        correlation_id=row.correlation_id,
    )


def publish_span(row: OutboxRow) -> Span:
    """Publishing a row (or carrying out its action) continues the trace of
    the change that wrote it."""
    return start_caused_span(
        f"outbox.publish {row.topic}",
        correlation_id=row.correlation_id,
        parent=row.traceparent,
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "redis",
            "messaging.destination.name": row.topic,
            "holdfast.outbox.dedupe_key": row.dedupe_key,
            "holdfast.outbox.attempts": row.attempts,
        },
    )


class OutboxRelay:
    def __init__(
        self,
        outbox: OutboxRepository,
        redis: Redis,
        settings: BookingSettings,
        metrics: BookingMetrics,
    ) -> None:
        self._outbox = outbox
        self._redis = redis
        self._settings = settings
        self._metrics = metrics
        self._wake = asyncio.Event()
        self._task = BackgroundTask("outbox-relay", self._run)
        # Rows published whose marking failed (the database went away in
        # between): marked first thing when it is back, rather than left to
        # their lease and published again that much later.
        self._unmarked: list[int] = []

    def wake(self) -> None:
        """Called after each committed write: there may be rows to publish."""
        self._wake.set()

    async def publish_once(self) -> int:
        """Publishes one batch of due messages in one pipeline; returns how
        many. If Redis fails, the rows are rescheduled with backoff and the
        error is raised so the loop backs off too."""
        s = self._settings
        if self._unmarked:
            await self._outbox.mark_published(self._unmarked)
            self._unmarked = []
        rows = await self._outbox.claim_due(s.relay_batch_size, s.relay_lease_seconds)
        if not rows:
            return 0
        ids = [row.id for row in rows]
        try:
            await self._append_to_streams(rows)
        except RedisError as error:
            self._metrics.outbox_publish_failures.inc(len(ids))
            await self._outbox.mark_failed(
                ids,
                f"{type(error).__name__}: {error}",
                s.relay_retry_base_seconds,
                s.relay_retry_max_seconds,
            )
            raise
        self._metrics.outbox_published.inc(len(ids))
        try:
            await self._outbox.mark_published(ids)
        except DomainError:
            self._unmarked += ids
            raise
        return len(rows)

    async def _append_to_streams(self, rows: list[OutboxRow]) -> None:
        s = self._settings
        spans = [publish_span(row) for row in rows]
        with ending(spans, "not published; retried later"):
            async with self._redis.pipeline(transaction=False) as pipe:
                for row in rows:
                    pipe.xadd(
                        stream_key(s, row.topic),
                        outbox_message(row).to_fields(),  # type: ignore[arg-type]
                        maxlen=s.stream_max_length,
                        approximate=True,
                    )
                await pipe.execute()

    async def drain(self) -> int:
        """Publishes batches until no due row is left; returns how many."""
        total = 0
        while True:
            published = await self.publish_once()
            total += published
            if published < self._settings.relay_batch_size:
                return total

    async def _run(self) -> None:
        s = self._settings
        retry_delay = 0.0
        claims_released = False
        while True:
            self._wake.clear()
            try:
                if not claims_released:
                    # Claims left by a relay that died (this one, before a
                    # restart) are published now rather than after their lease.
                    released = await self._outbox.release_claimed_messages()
                    claims_released = True
                    if released:
                        log.info("outbox relay: released %d claims left unfinished", released)
                await self.drain()
                if retry_delay:
                    log.info("outbox relay: Redis is back, publishing again")
                retry_delay = 0.0
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
