"""What the gateway knows of each resource's latest availability change, from
the availability stream it reads (gateway.stream.AvailabilityHub): the basis
of the ETags of availability answers (gateway.etags).

A resource's version is the id of the newest change to it the reader has
seen, or, for a resource not changed since the reader (re)connected, the
stream's newest id at that moment (the floor): every change to it is at or
before the floor. Versions of one reading session carry its epoch, a random
name: after a restart or an outage, when nobody can tell what was missed,
every version is new.

The ledger only vouches for a version while it is sure it has read the
stream to its end: connected, and its last read, within a read's blocking
time plus a second, came back with less than a full batch. Otherwise (not
yet connected, Redis unreachable, lagging behind a burst) it has no version
for anyone, and callers do what they would without one.
"""

from __future__ import annotations

import collections
import secrets
import time
from dataclasses import dataclass

from holdfast.platform.streams import stream_position

ResourceKey = tuple[str, str]  # (tenant, resource id)

# Resources whose newest change is remembered; past that the oldest is
# forgotten and the floor rises to its change (its version, and that of
# every resource not remembered, changes: never a stale version, at worst a
# needless 200).
_REMEMBERED = 100_000


@dataclass(frozen=True)
class Version:
    epoch: str
    change_id: str


class ChangeLedger:
    def __init__(self, block_seconds: float, remembered: int = _REMEMBERED) -> None:
        # A read blocks this long when nothing comes; a second more and the
        # reader is taken to be stuck.
        self._fresh_for = block_seconds + 1.0
        self._remembered = remembered
        self._epoch = ""
        self._floor = "0-0"
        self._newest: collections.OrderedDict[ResourceKey, str] = collections.OrderedDict()
        self._caught_up_at: float | None = None

    def restart(self, newest_id: str) -> None:
        """A new reading session, from `newest_id` (the stream's newest
        entry then); not sure of anything until a read comes back."""
        self._epoch = secrets.token_hex(8)
        self._floor = newest_id
        self._newest.clear()
        self._caught_up_at = None

    def lost(self) -> None:
        """The stream could not be read: no versions until restarted."""
        self._epoch = ""
        self._caught_up_at = None

    def read(self, entries: list[tuple[ResourceKey, str]], full_batch: bool) -> None:
        """A read came back with `entries` (in stream order); `full_batch`:
        it may have left more behind."""
        if not self._epoch:
            return
        for resource, change_id in entries:
            self._newest[resource] = change_id
            self._newest.move_to_end(resource)
        while len(self._newest) > self._remembered:
            _, forgotten = self._newest.popitem(last=False)
            self._floor = max(self._floor, forgotten, key=stream_position)
        self._caught_up_at = None if full_batch else time.monotonic()

    def version(self, resource: ResourceKey) -> Version | None:
        """The resource's version now, or None when the ledger is not sure."""
        caught_up = self._caught_up_at
        if not self._epoch or caught_up is None or time.monotonic() - caught_up > self._fresh_for:
            return None
        return Version(self._epoch, self._newest.get(resource, self._floor))
