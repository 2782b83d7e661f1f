"""How the schema (migration 0012) stores what this package computes with:
window rules in whole minutes, opening hours as rows of wall-clock times,
and a guarded window as whole epoch seconds.

Written once here so the booking service (which writes these rows) and the
availability service (which only reads them, and must not import the booking
service) read them the same way. Pure: rows come in as mappings of column
name to value, whatever driver produced them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from holdfast.scheduling.hours import OpeningHours, OpeningRange
from holdfast.scheduling.intervals import Interval
from holdfast.scheduling.rules import WindowRules

MINUTE = timedelta(minutes=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
# The seconds a guarded window may cover: the CHECK unit_windows_guard_bounds.
GUARD_RANGE = (0, 2**32 - 1)
# resource_window_rules' columns, in WindowRules' field order.
RULE_COLUMNS = (
    "min_duration_minutes",
    "max_duration_minutes",
    "granularity_minutes",
    "buffer_before_minutes",
    "buffer_after_minutes",
    "lead_time_minutes",
)


def rules_from_row(row: Mapping[str, Any]) -> WindowRules:
    """A resource_window_rules row as WindowRules."""
    return WindowRules(*(row[column] * MINUTE for column in RULE_COLUMNS))


def guard_seconds(guarded: Interval) -> tuple[int, int]:
    """An interval as epoch seconds [from, until), rounded outwards so the
    stored guard is never smaller than the one asked for."""
    start = (guarded.start - _EPOCH) // _SECOND
    end = -((_EPOCH - guarded.end) // _SECOND)
    if start < GUARD_RANGE[0] or end > GUARD_RANGE[1]:
        raise ValueError(f"a guarded window must lie in 1970-2106 UTC, got {guarded}")
    return start, end


def guarded_interval(guard_from: int, guard_until: int) -> Interval:
    """A unit_windows row's guard_from and guard_until as an interval."""
    return Interval(
        datetime.fromtimestamp(guard_from, UTC), datetime.fromtimestamp(guard_until, UTC)
    )


def hours_from_rows(
    zone: ZoneInfo,
    weekly: Iterable[Mapping[str, Any]],
    exceptions: Iterable[Mapping[str, Any]],
) -> OpeningHours:
    """resource_hours rows (weekday, opens, closes) and resource_hour_exceptions
    rows (day, opens, closes; no times closes the day) as OpeningHours."""
    by_weekday: dict[int, tuple[OpeningRange, ...]] = {}
    for row in weekly:
        day: int = row["weekday"]
        by_weekday[day] = (*by_weekday.get(day, ()), OpeningRange(row["opens"], row["closes"]))
    by_date: dict[date, tuple[OpeningRange, ...]] = {}
    for row in exceptions:
        ranges = by_date.setdefault(row["day"], ())
        if row["opens"] is not None:
            by_date[row["day"]] = (*ranges, OpeningRange(row["opens"], row["closes"]))
    return OpeningHours(zone, by_weekday, by_date)
