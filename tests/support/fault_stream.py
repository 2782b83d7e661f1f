"""A client of the availability stream for the fault tests (tests/faults/),
keeping every event with the time it arrived."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.gateway import Event, EventStream


@dataclass
class Subscriber:
    """A client of the availability stream that keeps every event with the
    time it arrived, reading in the background (`read`, as a task)."""

    stream: EventStream
    events: list[tuple[float, Event]] = field(default_factory=list)
    # Why the stream ended, if it did.
    ended: str | None = None
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def read(self) -> None:
        try:
            while True:
                event = await self.stream.next_event(within=3600)
                async with self._arrived:
                    self.events.append((time.monotonic(), event))
                    self._arrived.notify_all()
        except (AssertionError, httpx.HTTPError) as error:
            async with self._arrived:
                self.ended = f"{type(error).__name__}: {error}"
                self._arrived.notify_all()

    async def wait_for(
        self, shows: Callable[[dict[str, Any]], bool], within: float, after: float = 0.0
    ) -> tuple[float, dict[str, Any]]:
        """The first event that arrived after `after` (so far or to come)
        whose numbers satisfy `shows`, and when it arrived; fails if none
        comes within `within` seconds."""

        def found() -> tuple[float, dict[str, Any]] | None:
            for arrived, event in self.events:
                if arrived >= after and shows(event.json()):
                    return arrived, event.json()
            return None

        try:
            async with asyncio.timeout(within), self._arrived:
                await self._arrived.wait_for(lambda: found() is not None or self.ended is not None)
        except TimeoutError:
            raise AssertionError(f"no such event on the stream within {within} s") from None
        match = found()
        assert match is not None, f"the stream ended: {self.ended}"
        return match


def slot_numbers(availability: dict[str, Any], slot: str) -> tuple[int, int, int]:
    """(available, held, booked) of one slot in an availability answer."""
    [numbers] = [s for s in availability["slots"] if s["slot_id"] == slot]
    return numbers["available"], numbers["held"], numbers["booked"]
