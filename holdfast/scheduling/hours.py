"""A resource's opening hours: a week of wall-clock ranges in its IANA zone,
dated exceptions, and the open UTC intervals they make for a date range.

A range belongs to the day it opens on. One whose closing time is not after
its opening time runs past midnight (22:00-02:00 closes at 02:00 the next
day; 00:00-00:00 is open the whole day), so the hours of "Saturday" may end
on Sunday morning. An exception replaces the weekly ranges of its date: no
ranges is closed all day. Wall-clock times become instants by the rules in
`holdfast.scheduling.localtime` (the first of a repeated time, the end of a
skipped one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from holdfast.scheduling.intervals import Interval, merge
from holdfast.scheduling.localtime import DAY, resolve

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True, slots=True)
class OpeningRange:
    """Open from `opens` until `closes`, both wall-clock times; past midnight
    when `closes` is not after `opens`."""

    opens: time
    closes: time

    def __post_init__(self) -> None:
        if self.opens.tzinfo is not None or self.closes.tzinfo is not None:
            raise ValueError("opening hours are wall-clock times in the resource's zone")

    @property
    def past_midnight(self) -> bool:
        return self.closes <= self.opens

    def on(self, day: date, zone: ZoneInfo) -> Interval | None:
        """The instants this range is open when it opens on `day`; None when
        a skipped hour swallows all of it."""
        closing_day = day + DAY if self.past_midnight else day
        start = resolve(datetime.combine(day, self.opens), zone)
        end = resolve(datetime.combine(closing_day, self.closes), zone)
        return Interval(start, end) if start < end else None


@dataclass(frozen=True)
class OpeningHours:
    """`weekly` maps a weekday (0 = Monday, as `date.weekday()`) to its ranges;
    a day it leaves out is closed. `exceptions` maps a date to the ranges that
    replace that day's: an empty tuple closes it."""

    zone: ZoneInfo
    weekly: Mapping[int, tuple[OpeningRange, ...]]
    exceptions: Mapping[date, tuple[OpeningRange, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.weekly) - set(range(7)))
        if unknown:
            raise ValueError(f"weekdays are 0 (Monday) to 6 (Sunday), got {unknown}")

    def ranges_on(self, day: date) -> tuple[OpeningRange, ...]:
        if day in self.exceptions:
            return self.exceptions[day]
        return self.weekly.get(day.weekday(), ())


def open_intervals(hours: OpeningHours, first: date, last: date) -> list[Interval]:
    """The open instants of the ranges opening on the days `first` to `last`
    (inclusive), merged; the last day's hours may run into the next."""
    opened: list[Interval] = []
    day = first
    while day <= last:
        for opening in hours.ranges_on(day):
            interval = opening.on(day, hours.zone)
            if interval is not None:
                opened.append(interval)
        day += DAY
    return merge(opened)


def open_around(hours: OpeningHours, window: Interval) -> list[Interval]:
    """The open intervals that could hold `window`: the hours of every day
    from the one before it starts (its hours may run past midnight) to the
    one it ends on, in the resource's zone."""
    first = window.start.astimezone(hours.zone).date() - timedelta(days=1)
    last = window.end.astimezone(hours.zone).date()
    return open_intervals(hours, first, last)
