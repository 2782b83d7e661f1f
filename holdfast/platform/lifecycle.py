"""The order a service's parts start and stop in.

Each service declares its parts, each with a name, what starts it and what
stops it, in the order they start: clients and the metrics endpoint first,
then the background tasks, then what takes calls. They stop in reverse: what
takes calls stops accepting and drains first, then the background tasks, then
the clients close, and the metrics endpoint goes last (a scrape still sees the
end). Telemetry is flushed after, by `service.run_service`.

Every part added is stopped, whether or not its start was reached: a part is
added once it exists, and a start that failed halfway leaves nothing open.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

# What starts or stops a part: a plain call or a coroutine function.
Step = Callable[[], object]


@dataclass(frozen=True)
class Part:
    name: str
    start: Step | None
    stop: Step | None


async def _run(step: Step) -> None:
    result = step()
    if inspect.isawaitable(result):
        await result


class Lifecycle:
    def __init__(self) -> None:
        self._parts: list[Part] = []
        self._started = 0

    def add(self, name: str, *, start: Step | None = None, stop: Step | None = None) -> None:
        """Adds a part after those added so far: it starts after them and
        stops before them."""
        self._parts.append(Part(name, start, stop))

    @property
    def names(self) -> list[str]:
        return [part.name for part in self._parts]

    async def start(self) -> None:
        """Starts, in order, the parts added since the last start."""
        while self._started < len(self._parts):
            part = self._parts[self._started]
            self._started += 1
            if part.start is not None:
                await _run(part.start)

    async def stop(self) -> None:
        """Stops every part added, the last added first."""
        for part in reversed(self._parts):
            if part.stop is not None:
                log.debug("stopping %s", part.name)
                await _run(part.stop)
