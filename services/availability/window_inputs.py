"""What a windowed resource's availability over some dates is computed from,
and how it is kept in the caches.

**Why the caches hold inputs, not answers.** A bookable start depends on the
clock: a start inside the lead time must not be offered, and every minute
some start slips inside it. A cached *answer* would keep offering it until an
invalidation or a TTL dropped it, and a TTL is never what keeps the cache
exact here. So the caches hold what does not move with the clock: the
resource's zone, rules, active units, opening hours and the busy (guarded)
windows of its live holds and bookings over the span that can matter, all
read in one snapshot. Each request computes its answer from them at its own
"now" (`services.availability.windows`); that is pure arithmetic over a day
or a few weeks of a grid, cheap next to a database read. The inputs change
only with the resource's rows, so the change messages naming the resource
keep them exact, as they do slot answers.

One entry per resource and pair of dates (`span_key`), whatever the party
size or duration asked: the inputs cover the longest duration the rules allow.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time
from functools import cached_property
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter

from holdfast.scheduling.hours import OpeningHours, OpeningRange
from holdfast.scheduling.intervals import Interval
from holdfast.scheduling.localtime import DAY, resolve
from holdfast.scheduling.rules import WindowRules
from holdfast.scheduling.starts import Unit


@dataclass(frozen=True)
class WindowInputs:
    """`units` are the active ones, best first (smallest, then by name), and
    `unit_ids` their ids by name; `busy` maps a unit's name to the guarded
    windows of its live holds and bookings that touch `busy_span`."""

    time_zone: str
    rules: WindowRules
    units: tuple[Unit, ...]
    unit_ids: dict[str, uuid.UUID]
    weekly: dict[int, tuple[OpeningRange, ...]]
    exceptions: dict[date, tuple[OpeningRange, ...]]
    busy: dict[str, tuple[Interval, ...]]

    @cached_property
    def hours(self) -> OpeningHours:
        return OpeningHours(ZoneInfo(self.time_zone), self.weekly, self.exceptions)

    def to_bytes(self) -> bytes:
        return _ADAPTER.dump_json(self)

    @staticmethod
    def from_bytes(value: bytes) -> WindowInputs:
        return _ADAPTER.validate_json(value)


_ADAPTER = TypeAdapter(WindowInputs)


def span_key(first: date, last: date) -> str:
    """The caches' name for window inputs of the dates `first` to `last`: never
    the name of a slot answer's span (two numbers), so the two never mix."""
    return f"w:{first.isoformat()}:{last.isoformat()}"


def exception_days(rules: WindowRules, first: date, last: date) -> tuple[date, date]:
    """The dates whose hours a window starting on `first` to `last` can touch:
    the day before (its hours may run past midnight) to the day a window of
    the longest duration, starting on the last day's late hours, ends."""
    return first - DAY, last + 2 * DAY + rules.max_duration // DAY * DAY


def busy_span(zone: ZoneInfo, rules: WindowRules, first: date, last: date) -> Interval:
    """The instants whose busy windows can matter to the dates `first` to
    `last`: a start lies within the hours opening on those dates (from local
    midnight of `first` to that of two days after `last`, as the last day's
    hours may run past midnight), and its guarded window reaches the buffer
    before it and the longest duration and buffer after it."""
    opens = resolve(datetime.combine(first, time()), zone)
    closes = resolve(datetime.combine(last + 2 * DAY, time()), zone)
    return Interval(opens - rules.buffer_before, closes + rules.max_duration + rules.buffer_after)
