"""Reading the rows of migration 0012 into the scheduling types."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from holdfast.scheduling.hours import OpeningRange
from holdfast.scheduling.intervals import Interval
from holdfast.scheduling.rules import WindowRules
from holdfast.scheduling.stored import (
    guard_seconds,
    guarded_interval,
    hours_from_rows,
    rules_from_row,
)

MINUTE = timedelta(minutes=1)


def test_rules_are_stored_in_minutes() -> None:
    row = {
        "min_duration_minutes": 60,
        "max_duration_minutes": 180,
        "granularity_minutes": 15,
        "buffer_before_minutes": 5,
        "buffer_after_minutes": 10,
        "lead_time_minutes": 120,
        "price_period_minutes": 0,
    }
    assert rules_from_row(row) == WindowRules(
        60 * MINUTE, 180 * MINUTE, 15 * MINUTE, 5 * MINUTE, 10 * MINUTE, 120 * MINUTE
    )


def test_a_guard_rounds_outwards_to_whole_seconds_and_back() -> None:
    start = datetime(2030, 6, 1, 19, 0, 0, 500_000, tzinfo=UTC)
    end = datetime(2030, 6, 1, 21, 0, 0, 1, tzinfo=UTC)
    low, high = guard_seconds(Interval(start, end))
    assert guarded_interval(low, high) == Interval(
        start.replace(microsecond=0), end.replace(microsecond=0) + timedelta(seconds=1)
    )


def test_a_guard_outside_the_stored_range_is_refused() -> None:
    with pytest.raises(ValueError, match="1970-2106"):
        guard_seconds(Interval(datetime(2107, 1, 1, tzinfo=UTC), datetime(2107, 1, 2, tzinfo=UTC)))


def test_hours_rows_become_weekly_ranges_and_exceptions() -> None:
    weekly: list[dict[str, object]] = [
        {"weekday": 4, "opens": time(12), "closes": time(14)},
        {"weekday": 4, "opens": time(19), "closes": time(23)},
        {"weekday": 5, "opens": time(22), "closes": time(2)},
    ]
    exceptions: list[dict[str, object]] = [
        {"day": date(2030, 12, 25), "opens": None, "closes": None},
        {"day": date(2030, 12, 31), "opens": time(19), "closes": time(3)},
    ]
    hours = hours_from_rows(ZoneInfo("Europe/Paris"), weekly, exceptions)
    assert hours.weekly == {
        4: (OpeningRange(time(12), time(14)), OpeningRange(time(19), time(23))),
        5: (OpeningRange(time(22), time(2)),),
    }
    assert hours.exceptions == {
        date(2030, 12, 25): (),
        date(2030, 12, 31): (OpeningRange(time(19), time(3)),),
    }
