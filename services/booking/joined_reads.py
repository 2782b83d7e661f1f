"""Identical reads in flight at once share one round trip.

A thousand buyers of one hot slot each read it before deciding (the preview
of a hold), and all but a few are refused from that read. Reads of the same
thing asked while one is in flight wait for it to finish and then share the
next one, so a burst costs one read at a time per slot instead of one per
buyer.

A caller is only ever given a read sent after it asked: the state it is
answered from existed while its request was open, so a refusal is as right
as one from a read of its own (never from before a release it asked after).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)
Value = TypeVar("Value")


class JoinedReads(Generic[Key, Value]):
    def __init__(self, read: Callable[[Key], Awaitable[Value]]) -> None:
        self._read = read
        # Per key: the read in flight (sent), and the one that will be sent
        # when it is done, which callers asking meanwhile join.
        self._in_flight: dict[Key, asyncio.Future[Value]] = {}
        self._next: dict[Key, asyncio.Future[Value]] = {}

    async def get(self, key: Key) -> Value:
        read = self._next.get(key)
        if read is None:
            ahead = self._in_flight.get(key)
            read = asyncio.ensure_future(self._read_after(key, ahead))
            # Not awaited by anyone if every caller gave up: retrieve the error.
            read.add_done_callback(_retrieve)
            if ahead is None:
                self._in_flight[key] = read
            else:
                self._next[key] = read
        # Shielded: a caller that gives up (cancelled) leaves it to the others.
        return await asyncio.shield(read)

    async def _read_after(self, key: Key, ahead: asyncio.Future[Value] | None) -> Value:
        this = asyncio.current_task()
        assert this is not None
        try:
            if ahead is not None:
                await asyncio.wait([ahead])
                # Sent from here on: whoever asks now waits for the next read.
                del self._next[key]
                self._in_flight[key] = this
            return await self._read(key)
        finally:
            if self._next.get(key) is this:  # cancelled while waiting (shutdown)
                del self._next[key]
            if self._in_flight.get(key) is this:
                del self._in_flight[key]


def _retrieve(read: asyncio.Future[Any]) -> None:
    if not read.cancelled():
        read.exception()
