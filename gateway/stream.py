"""Live availability for Server-Sent Events, fed by the availability stream.

One reader per gateway process follows the Redis Stream the booking service's
outbox relay writes, and wakes the subscribers of the resource each message
is about; they then need the resource's current numbers. Those are read once
per change and window for all the subscribers of this process (`SharedReads`),
not once per subscriber: a change to a popular resource costs one call to the
availability service, not thousands. Each event's id is the stream entry's
id, so a client that reconnects with `Last-Event-ID` gets the current numbers
at once if anything changed meanwhile, and nothing otherwise.

Each API key may hold a bounded number of streams open at once, per gateway
process (`StreamQuota`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.changes import ChangeLedger
from holdfast.platform.background import BackgroundTask
from holdfast.platform.streams import ChangeMessage, stream_position

log = logging.getLogger(__name__)

ResourceKey = tuple[str, str]  # (tenant, resource id)
WindowKey = tuple[str, str, str, str]  # (tenant, resource id, start, end)
T = TypeVar("T")
# The largest stream id there can be: nothing comes after it.
_LAST_POSSIBLE = (2**64 - 1, 2**64 - 1)
# A resumed stream looks this far back for its resource's changes, at most.
_SCAN_LIMIT = 1000
Entry = tuple[bytes, dict[bytes, bytes]]
# Entries one read takes at most; a full batch means it may be behind.
_READ_COUNT = 500


class AvailabilityHub:
    def __init__(self, redis: Redis, stream: str, block_ms: int = 1000) -> None:
        self._redis = redis
        self._stream = stream
        self._block_ms = block_ms
        self._subscribers: dict[ResourceKey, set[asyncio.Queue[str]]] = {}
        # Each resource's newest change, for the ETags of availability answers.
        self.changes = ChangeLedger(block_ms / 1000)
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
        if stream_position(last_id) >= _LAST_POSSIBLE:
            return None  # nothing can be newer (and Redis refuses to look)
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
        changes = [(ChangeMessage.subject_of(f), entry_id.decode()) for entry_id, f in entries]
        self.changes.read(changes, full_batch=len(entries) >= _READ_COUNT)
        for resource, entry_id in changes:
            for queue in self._subscribers.get(resource, ()):
                if queue.full():
                    queue.get_nowait()  # the subscriber only needs the newest
                queue.put_nowait(entry_id)

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
                    self.changes.restart(last)
                    if lost:
                        self._refresh_everyone(last)
                        lost = False
                reply = cast(
                    "list[tuple[bytes, list[Entry]]]",
                    await self._redis.xread(
                        {self._stream: last}, count=_READ_COUNT, block=self._block_ms
                    ),
                )
                entries = reply[0][1] if reply else []
                self._publish(entries)
                if entries:
                    last = max(last, entries[-1][0].decode(), key=stream_position)
            except RedisError as error:
                log.warning("availability stream unreachable for SSE: %s", error)
                self.changes.lost()
                last = "$"
                lost = True
                await asyncio.sleep(1.0)

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()
        self.changes.lost()


class TooManyStreams(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"at most {limit} streams at once per API key")
        self.limit = limit


class StreamQuota:
    """How many streams each API key holds open in this process, at most
    `per_key`. A place is taken before the stream starts and given back when
    it ends, however it ends."""

    def __init__(self, per_key: int) -> None:
        self._per_key = per_key
        self._open: dict[str, int] = {}

    def open_streams(self, key: str) -> int:
        return self._open.get(key, 0)

    @contextlib.contextmanager
    def place(self, key: str) -> Iterator[None]:
        """Raises TooManyStreams if `key` holds all its places already."""
        if self._open.get(key, 0) >= self._per_key:
            raise TooManyStreams(self._per_key)
        self._open[key] = self._open.get(key, 0) + 1
        try:
            yield
        finally:
            left = self._open[key] - 1
            if left:
                self._open[key] = left
            else:
                del self._open[key]


@dataclass
class _Read(Generic[T]):
    change_id: str
    task: asyncio.Future[T]


class SharedReads(Generic[T]):
    """The numbers of a window as of a change, read once for every subscriber
    of that window in this process: whoever asks for a change that is being
    read, or was read, or for an older one, shares that read; only a newer
    change starts another. What is kept is the newest read per window, while
    someone watches it."""

    def __init__(self) -> None:
        self._latest: dict[WindowKey, _Read[T]] = {}
        self._watchers: dict[WindowKey, int] = {}

    @contextlib.contextmanager
    def watching(self, window: WindowKey) -> Iterator[None]:
        self._watchers[window] = self._watchers.get(window, 0) + 1
        try:
            yield
        finally:
            self._watchers[window] -= 1
            if not self._watchers[window]:
                del self._watchers[window]
                self._latest.pop(window, None)

    async def read(
        self, window: WindowKey, change_id: str, fetch: Callable[[str], Awaitable[T]]
    ) -> tuple[str, T]:
        """The numbers as of `change_id` or a later change, and that change."""
        latest = self._latest.get(window)
        if latest is None or stream_position(latest.change_id) < stream_position(change_id):
            latest = _Read(change_id, asyncio.ensure_future(fetch(change_id)))
            self._latest[window] = latest
            latest.task.add_done_callback(lambda task: self._forget_failed(window, task))
        # Shielded: a subscriber that leaves does not cancel the others' read.
        return latest.change_id, await asyncio.shield(latest.task)

    def _forget_failed(self, window: WindowKey, task: asyncio.Future[T]) -> None:
        """A failed read is not kept: the next one asking tries again."""
        if task.cancelled() or task.exception() is not None:
            latest = self._latest.get(window)
            if latest is not None and latest.task is task:
                del self._latest[window]
