"""What availability and holds ask of a windowed resource: the start times
that can be booked, each unit's free intervals, and the unit a window goes to.

`busy` maps a unit's name to the buffered windows of its live holds and
bookings (`rules.buffered` of each): a new window fits on a unit when its own
buffered window overlaps none of them, which is what the database's exclusion
constraint will check.

Start times belong to the day whose hours they fall in: asking for Saturday
gives the starts of Saturday's hours, including those after midnight when
Saturday's hours run past it, and not those of Friday's late hours.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from holdfast.scheduling.hours import OpeningHours, open_intervals
from holdfast.scheduling.intervals import Interval, overlaps_any, subtract
from holdfast.scheduling.localtime import DAY, grid_instants
from holdfast.scheduling.rules import WindowRules, buffered, problem_within

Busy = Mapping[str, Sequence[Interval]]


@dataclass(frozen=True, slots=True)
class Unit:
    """A table, room or bike: `size` is its seats, beds, or 1."""

    name: str
    size: int
    active: bool = True


def fitting(units: Iterable[Unit], party_size: int) -> list[Unit]:
    """The active units a party fits, best first: the smallest, then by name,
    so that the same request picks the same unit every time."""
    if party_size < 1:
        raise ValueError(f"party_size must be at least 1, got {party_size}")
    fits = (unit for unit in units if unit.active and unit.size >= party_size)
    return sorted(fits, key=lambda unit: (unit.size, unit.name))


def best_unit(units: Iterable[Unit], party_size: int, busy: Busy, guarded: Interval) -> Unit | None:
    """The best fitting unit whose busy intervals leave `guarded` (the new
    window's `buffered(window, rules)`) untouched, or None when every unit
    that fits is taken."""
    for unit in fitting(units, party_size):
        if not overlaps_any(busy.get(unit.name, ()), guarded):
            return unit
    return None


def bookable_starts(
    rules: WindowRules,
    hours: OpeningHours,
    first: date,
    last: date,
    duration: timedelta,
    party_size: int,
    units: Iterable[Unit],
    busy: Busy,
    now: datetime,
) -> list[datetime]:
    """The start times, in order and in UTC, of the days `first` to `last`
    at which a window of `duration` passes `rules.window_problem` and some
    unit that fits `party_size` is free."""
    candidates = fitting(units, party_size)
    if not candidates or not rules.min_duration <= duration <= rules.max_duration:
        return []
    zone = hours.zone
    own = open_intervals(hours, first, last)
    # A window may run on into hours of the days after (or join a late range
    # from the day before), as window_problem would allow.
    around = open_intervals(hours, first - DAY, last + DAY + duration // DAY * DAY)
    starts: list[datetime] = []
    for piece in own:
        for start in grid_instants(zone, rules.granularity, piece):
            window = Interval(start, start + duration)
            if problem_within(rules, zone, around, window, now) is not None:
                continue
            if best_unit(candidates, party_size, busy, buffered(window, rules)) is not None:
                starts.append(start)
    return starts


def free_intervals(
    hours: OpeningHours,
    first: date,
    last: date,
    units: Iterable[Unit],
    busy: Busy,
    party_size: int = 1,
) -> dict[str, list[Interval]]:
    """Per unit that fits `party_size`, best first: the open hours of the days
    `first` to `last` that none of its busy intervals touch. Lead time and
    durations are not applied: this is the unit's calendar, not its offers."""
    opened = open_intervals(hours, first, last)
    return {
        unit.name: subtract(opened, busy.get(unit.name, ())) for unit in fitting(units, party_size)
    }
