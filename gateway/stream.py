"""Live availability for Server-Sent Events, fed by the availability stream.

One reader per gateway process follows the Redis Stream the booking service's
outbox relay writes, and wakes the subscribers of the resource each message
is about; a subscriber then asks the availability service for the resource's
current numbers and sends them. Each event's id is the stream entry's id, so
a client that reconnects with `Last-Event-ID` gets the current numbers at once
if anything changed meanwhile, and nothing otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from holdfast.platform.background import BackgroundTask
from holdfast.platform.streams import ChangeMessage, stream_position

log = logging.getLogger(__name__)

ResourceKey = tuple[str, str]  # (tenant, resource id)
# A resumed stream looks this far back for its resource's changes, at most.
_SCAN_LIMIT = 1000
Entry = tuple[bytes, dict[bytes, bytes]]


class AvailabilityHub:
    def __init__(self, redis: Redis, stream: str, block_ms: int = 1000) -> None:
        self._redis = redis
        self._stream = stream
        self._block_ms = block_ms
        self._subscribers: dict[ResourceKey, set[asyncio.Queue[str]]] = {}
        self._task = BackgroundTask("sse-availability", self._run)

    @contextlib.contextmanager
    def subscribe(self, resource: ResourceKey) -> Iterator[asyncio.Queue[str]]:
        """A queue that receives the stream id of each change to `resource`
        (only the newest is kept while the subscriber is busy)."""
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
        self._subscribers.setdefault(resource, set()).add(queue)
        try:
            yield queue
        finally:
            queues = self._subscribers.get(resource)
            if queues is not None:
                queues.discard(queue)
                if not queues:
                    del self._subscribers[resource]

    async def newest_id(self) -> str:
        newest = cast("list[Entry]", await self._redis.xrevrange(self._stream, count=1))
        return newest[0][0].decode() if newest else "0-0"

    async def changed_since(self, resource: ResourceKey, last_id: str) -> str | None:
        """The newest stream id after `last_id` about `resource`, if any.

        Reads the newest entries only, at most _SCAN_LIMIT: a reader further
        behind than that, or behind what the stream still holds (trimmed, or
        lost with Redis), may have missed a change and gets the newest id."""
        entries = cast(
            "list[Entry]",
            await self._redis.xrevrange(self._stream, "+", f"({last_id}", count=_SCAN_LIMIT),
        )
        for entry_id, fields in entries:
            if ChangeMessage.subject_of(fields) == resource:
                return entry_id.decode()
        if not entries:
            return None
        if len(entries) == _SCAN_LIMIT:
            return entries[0][0].decode()
        oldest = cast("list[Entry]", await self._redis.xrange(self._stream, count=1))
        if oldest and stream_position(oldest[0][0]) > stream_position(last_id):
            return entries[0][0].decode()
        return None

    def _publish(self, entries: list[Entry]) -> None:
        for entry_id, fields in entries:
            resource = ChangeMessage.subject_of(fields)
            for queue in self._subscribers.get(resource, ()):
                if queue.full():
                    queue.get_nowait()  # the subscriber only needs the newest
                queue.put_nowait(entry_id.decode())

    def _refresh_everyone(self, entry_id: str) -> None:
        """After an outage nobody can tell what they missed: all refresh."""
        for queues in self._subscribers.values():
            for queue in queues:
                if queue.full():
                    queue.get_nowait()
                queue.put_nowait(entry_id)

    async def _run(self) -> None:
        last = "$"
        lost = False
        while True:
            try:
                if last == "$":
                    last = await self.newest_id()
                    if lost:
                        self._refresh_everyone(last)
                        lost = False
                reply = cast(
                    "list[tuple[bytes, list[Entry]]]",
                    await self._redis.xread({self._stream: last}, count=500, block=self._block_ms),
                )
                entries = reply[0][1] if reply else []
                if entries:
                    self._publish(entries)
                    last = max(last, entries[-1][0].decode(), key=stream_position)
            except RedisError as error:
                log.warning("availability stream unreachable for SSE: %s", error)
                last = "$"
                lost = True
                await asyncio.sleep(1.0)

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()
