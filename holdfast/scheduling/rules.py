"""A windowed resource's rules, the interval a booking guards, and why a
requested window cannot be booked.

- Durations are elapsed time: a two-hour seating across the spring-forward
  change still lasts two hours.
- The granularity applies to the start, on the wall-clock grid of
  `holdfast.scheduling.localtime` (19:00, 19:15, ...); the end is the start
  plus a duration the rules allow, so a hotel stay of 15:00 to 11:00 is not
  forced onto whole days.
- The window itself must lie within open hours; its buffers need not
  (clearing a table after closing is fine). The buffers are what two
  bookings on one unit must not share: `buffered(window, rules)` is the
  interval the database's exclusion constraint guards.
- The lead time is counted from `now` to the start: a start exactly at
  now + lead_time is bookable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from holdfast.scheduling.hours import OpeningHours, open_around
from holdfast.scheduling.intervals import Interval, covers
from holdfast.scheduling.localtime import check_granularity, on_grid

NONE = timedelta(0)


@dataclass(frozen=True, slots=True)
class WindowRules:
    min_duration: timedelta
    max_duration: timedelta
    granularity: timedelta
    buffer_before: timedelta = NONE
    buffer_after: timedelta = NONE
    lead_time: timedelta = NONE

    def __post_init__(self) -> None:
        check_granularity(self.granularity)
        if not NONE < self.min_duration <= self.max_duration:
            raise ValueError(
                "durations must satisfy 0 < min_duration <= max_duration,"
                f" got {self.min_duration} and {self.max_duration}"
            )
        for name in ("buffer_before", "buffer_after", "lead_time"):
            if getattr(self, name) < NONE:
                raise ValueError(f"{name} must not be negative")


def buffered(window: Interval, rules: WindowRules) -> Interval:
    """The window widened by the buffers: what no other booking on the unit may touch."""
    return Interval(window.start - rules.buffer_before, window.end + rules.buffer_after)


def _minutes(span: timedelta) -> str:
    return f"{span // timedelta(minutes=1)} minutes"


def problem_within(
    rules: WindowRules,
    zone: ZoneInfo,
    open_hours: Sequence[Interval],
    window: Interval,
    now: datetime,
) -> str | None:
    """`window_problem` given the open intervals already worked out, for the
    callers that ask about many windows of one range."""
    if window.duration < rules.min_duration:
        return f"window: shorter than the minimum duration of {_minutes(rules.min_duration)}"
    if window.duration > rules.max_duration:
        return f"window: longer than the maximum duration of {_minutes(rules.max_duration)}"
    if not on_grid(window.start, zone, rules.granularity):
        return (
            f"window.start: not on the {_minutes(rules.granularity)} grid"
            f" counted from midnight in {zone.key}"
        )
    if window.start < now + rules.lead_time:
        return f"window.start: inside the lead time of {_minutes(rules.lead_time)}"
    if not covers(open_hours, window):
        return "window: outside the opening hours"
    return None


def window_problem(
    rules: WindowRules, hours: OpeningHours, window: Interval, now: datetime
) -> str | None:
    """Why `window` cannot be booked under `rules` and `hours` at `now`, naming
    the field at fault, or None when it can (whether a unit is free is
    `starts.best_unit`'s question). Durations, the grid and the hours are the
    request's fault; the lead time is the clock's."""
    return problem_within(rules, hours.zone, open_around(hours, window), window, now)
