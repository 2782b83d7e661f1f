"""Weekly opening hours and their exceptions as open UTC intervals."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from holdfast.scheduling.hours import OpeningHours, OpeningRange, open_around, open_intervals
from holdfast.scheduling.intervals import Interval

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
LUNCH = OpeningRange(time(12), time(14, 30))
DINNER = OpeningRange(time(19), time(23))
LATE = OpeningRange(time(22), time(2))
SATURDAY = 5


def utc(year: int, month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_a_day_with_two_ranges_opens_twice_in_local_time() -> None:
    # Monday 1 June 2026, Paris is UTC+2.
    hours = OpeningHours(PARIS, {0: (LUNCH, DINNER)})
    assert open_intervals(hours, date(2026, 6, 1), date(2026, 6, 1)) == [
        Interval(utc(2026, 6, 1, 10), utc(2026, 6, 1, 12, 30)),
        Interval(utc(2026, 6, 1, 17), utc(2026, 6, 1, 21)),
    ]
    # Tuesday is not in the week: closed.
    assert open_intervals(hours, date(2026, 6, 2), date(2026, 6, 2)) == []


def test_a_range_past_midnight_closes_the_next_day_and_belongs_to_the_day_it_opens() -> None:
    hours = OpeningHours(NEW_YORK, {SATURDAY: (LATE,)})
    # Saturday 6 June 2026 22:00 EDT (02:00 UTC Sunday) to Sunday 02:00 EDT.
    saturday_night = Interval(utc(2026, 6, 7, 2), utc(2026, 6, 7, 6))
    assert open_intervals(hours, date(2026, 6, 6), date(2026, 6, 6)) == [saturday_night]
    # Asked for Sunday alone, the Saturday night is not Sunday's.
    assert open_intervals(hours, date(2026, 6, 7), date(2026, 6, 7)) == []
    # A window at 01:00 Sunday finds it by looking at the day before.
    window = Interval(utc(2026, 6, 7, 5), utc(2026, 6, 7, 6))
    assert open_around(hours, window) == [saturday_night]


def test_midnight_to_midnight_is_open_all_day_and_joins_the_next_day() -> None:
    all_day = OpeningRange(time(0), time(0))
    hours = OpeningHours(PARIS, {0: (all_day,), 1: (all_day,)})
    # Monday 00:00 CEST to Wednesday 00:00 CEST.
    assert open_intervals(hours, date(2026, 6, 1), date(2026, 6, 2)) == [
        Interval(utc(2026, 5, 31, 22), utc(2026, 6, 2, 22))
    ]


def test_an_exception_closes_a_day_or_gives_it_special_hours() -> None:
    christmas, eve = date(2026, 12, 25), date(2026, 12, 24)  # a Friday and a Thursday
    hours = OpeningHours(
        PARIS,
        {weekday: (LUNCH, DINNER) for weekday in range(7)},
        exceptions={christmas: (), eve: (OpeningRange(time(18), time(1)),)},
    )
    assert open_intervals(hours, christmas, christmas) == []
    # Paris in December is UTC+1: 18:00 to 01:00 the next day.
    assert open_intervals(hours, eve, eve) == [
        Interval(utc(2026, 12, 24, 17), utc(2026, 12, 25, 0))
    ]
    assert len(open_intervals(hours, date(2026, 12, 26), date(2026, 12, 26))) == 2


def test_opening_inside_the_spring_gap_opens_when_the_clocks_jump() -> None:
    # Paris, Sunday 29 March 2026: 02:00 CET (01:00 UTC) becomes 03:00 CEST.
    early = OpeningRange(time(2, 30), time(6))
    hours = OpeningHours(PARIS, {6: (early,)})
    assert open_intervals(hours, date(2026, 3, 29), date(2026, 3, 29)) == [
        Interval(utc(2026, 3, 29, 1), utc(2026, 3, 29, 4))
    ]
    # A range wholly inside the gap is not open at all.
    swallowed = OpeningHours(PARIS, {6: (OpeningRange(time(2, 15), time(2, 45)),)})
    assert open_intervals(swallowed, date(2026, 3, 29), date(2026, 3, 29)) == []


def test_closing_inside_the_repeated_hour_closes_at_its_first_occurrence() -> None:
    # Paris, Saturday 24 Oct 2026 22:00 CEST (20:00 UTC) to Sunday 02:30,
    # first shown at 00:30 UTC (CEST); the second 02:30 (01:30 UTC) is not sold.
    hours = OpeningHours(PARIS, {SATURDAY: (OpeningRange(time(22), time(2, 30)),)})
    assert open_intervals(hours, date(2026, 10, 24), date(2026, 10, 24)) == [
        Interval(utc(2026, 10, 24, 20), utc(2026, 10, 25, 0, 30))
    ]


def test_hours_refuse_zoned_times_and_unknown_weekdays() -> None:
    with pytest.raises(ValueError, match="wall-clock times"):
        OpeningRange(time(12, tzinfo=UTC), time(14))
    with pytest.raises(ValueError, match="weekdays are 0"):
        OpeningHours(PARIS, {7: (LUNCH,)})
