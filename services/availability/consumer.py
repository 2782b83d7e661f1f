"""Applies the booking service's change messages to the caches.

Every availability replica runs one. It reads the availability stream with
plain `XREAD` (not a consumer group: every replica must see every message),
and for each batch bumps the resources' generations in the shared cache,
drops their local entries, and records the newest entry applied.

Where it starts:
- at process start, after the newest entry some replica applied, if that entry
  is still in the stream (nothing after it was trimmed); otherwise it cannot
  tell what it missed, so it drops the whole cache and starts from the end;
- after losing Redis, it always drops the whole cache: changes committed during
  the outage may still sit in the outbox, unpublished, so the stream cannot
  say what is stale.

The caches are used only while the consumer is *live*: connected and caught
up. Otherwise the service answers from Postgres and reports itself degraded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import cast

from opentelemetry.trace import Span, SpanKind
from redis.asyncio import Redis
from redis.exceptions import RedisError

from holdfast.platform.background import BackgroundTask
from holdfast.platform.streams import AVAILABILITY_TOPIC, ChangeMessage, stream_position
from holdfast.platform.telemetry import ending, link_to, start_caused_span
from services.availability.cache import LocalCache, ResourceKey, SharedCache
from services.availability.metrics import AvailabilityMetrics

log = logging.getLogger(__name__)

# Dedupe keys remembered to recognise redeliveries (for the lag metric only:
# applying a message twice is harmless).
_REMEMBERED_MESSAGES = 10_000


# Stream replies as redis-py returns them over RESP2 (its default protocol).
Entry = tuple[bytes, dict[bytes, bytes]]


def _entry_ids(reply: object) -> list[bytes]:
    return [entry_id for entry_id, _ in cast("list[Entry]", reply)]


def _invalidation_span(message: ChangeMessage) -> Span:
    """Applying a change links to the trace of the request that made it."""
    return start_caused_span(
        "availability.invalidate",
        correlation_id=message.correlation_id,
        links=link_to(message.traceparent, message.correlation_id),
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "redis",
            "messaging.destination.name": AVAILABILITY_TOPIC,
            "messaging.message.id": message.stream_id,
            "holdfast.resource_id": message.message_key,
            "holdfast.outbox.dedupe_key": message.dedupe_key,
        },
    )


class InvalidationConsumer:
    def __init__(
        self,
        redis: Redis,
        stream: str,
        shared: SharedCache,
        local: LocalCache,
        metrics: AvailabilityMetrics,
        *,
        block_ms: int,
        batch_size: int,
        retry_max_seconds: float,
        on_live_change: Callable[[bool], Awaitable[None]],
    ) -> None:
        self._redis = redis
        self._stream = stream
        self._shared = shared
        self._local = local
        self._metrics = metrics
        self._block_ms = block_ms
        self._batch_size = batch_size
        self._retry_max = retry_max_seconds
        self._on_live_change = on_live_change
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._task = BackgroundTask("availability-invalidations", self._run)
        self.live = False
        self.last_id = ""

    async def _starting_point(self, after_outage: bool) -> str:
        newest = _entry_ids(await self._redis.xrevrange(self._stream, count=1))
        newest_id = newest[0].decode() if newest else "0-0"
        if not after_outage:
            applied = cast("bytes | None", await self._redis.get(self._shared.applied_key))
            oldest = _entry_ids(await self._redis.xrange(self._stream, count=1))
            if applied and oldest and stream_position(oldest[0]) <= stream_position(applied):
                return applied.decode()
        # Cannot tell what was missed: everything cached so far goes.
        await self._shared.drop_all()
        self._local.clear()
        self._metrics.cache_drops.inc()
        log.info("availability cache dropped", extra={"after_outage": after_outage})
        return newest_id

    async def _apply(self, entries: list[Entry]) -> None:
        messages = [
            ChangeMessage.from_entry(AVAILABILITY_TOPIC, entry_id, fields)
            for entry_id, fields in entries
        ]
        spans = [_invalidation_span(m) for m in messages]
        resources: set[ResourceKey] = {(m.tenant_id, m.message_key) for m in messages}
        # Readers of these resources go to Postgres until the shared cache
        # has the new generations: the change shows here without waiting
        # for that round trip.
        self._local.begin_invalidation(resources)
        try:
            with ending(spans, "not applied; the cache is dropped instead"):
                await self._shared.invalidate(resources, messages[-1].stream_id)
        finally:
            self._local.end_invalidation(resources)
        now = time.time()
        for message in messages:
            self._metrics.invalidations.inc()
            if message.dedupe_key in self._seen:
                self._metrics.duplicate_messages.inc()
                continue
            self._seen[message.dedupe_key] = None
            if len(self._seen) > _REMEMBERED_MESSAGES:
                self._seen.popitem(last=False)
            self._metrics.invalidation_lag.observe(max(0.0, now - message.written_at.timestamp()))
        self.last_id = messages[-1].stream_id

    async def _set_live(self, live: bool) -> None:
        if live == self.live:
            return
        self.live = live
        if not live:
            # Invalidations may be missed from now on: nothing local is trusted.
            self._local.clear()
        self._metrics.degraded.set(0 if live else 1)
        await self._on_live_change(live)
        log.log(
            logging.INFO if live else logging.WARNING,
            "availability cache %s",
            "live" if live else "bypassed (degraded): answering from Postgres",
        )

    async def _run(self) -> None:
        after_outage = False
        delay = 0.0
        connected = False
        # The first read after (re)connecting does not block: what it finds
        # (less than a batch: caught up) makes the consumer live at once,
        # rather than after a blocking read's wait for news.
        block: int | None = None
        while True:
            try:
                if not connected:
                    self.last_id = await self._starting_point(after_outage)
                    connected = True
                    block = None
                response = cast(
                    "list[tuple[bytes, list[Entry]]]",
                    await self._redis.xread(
                        {self._stream: self.last_id}, count=self._batch_size, block=block
                    ),
                )
                block = self._block_ms
                entries = response[0][1] if response else []
                if entries:
                    await self._apply(entries)
                if len(entries) < self._batch_size:
                    await self._set_live(True)  # caught up with the stream
                delay = 0.0
            except RedisError as error:
                if connected or delay == 0.0:
                    log.warning("availability stream unreachable: %s", error)
                connected = False
                after_outage = True
                await self._set_live(False)
                delay = min(self._retry_max, max(0.05, delay * 2))
                await asyncio.sleep(delay)

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()
        await self._set_live(False)
