"""Wall-clock times to instants across daylight-saving changes, and the grid."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from holdfast.scheduling.intervals import Interval
from holdfast.scheduling.localtime import (
    check_granularity,
    grid_instants,
    occurrences,
    on_grid,
    resolve,
)

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
KATHMANDU = ZoneInfo("Asia/Kathmandu")


def utc(year: int, month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_an_ordinary_time_names_one_instant() -> None:
    # Paris in June is UTC+2.
    assert occurrences(datetime(2026, 6, 1, 19, 30), PARIS) == [utc(2026, 6, 1, 17, 30)]
    assert resolve(datetime(2026, 6, 1, 19, 30), PARIS) == utc(2026, 6, 1, 17, 30)


def test_a_repeated_time_names_its_first_occurrence() -> None:
    # Paris, 25 Oct 2026: 03:00 CEST (01:00 UTC) becomes 02:00 CET, so 02:30
    # is 00:30 UTC (CEST) and again 01:30 UTC (CET).
    wall = datetime(2026, 10, 25, 2, 30)
    assert occurrences(wall, PARIS) == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30)]
    assert resolve(wall, PARIS) == utc(2026, 10, 25, 0, 30)
    # New York, 1 Nov 2026: 02:00 EDT (06:00 UTC) becomes 01:00 EST; 01:30
    # is 05:30 UTC, then 06:30 UTC.
    assert resolve(datetime(2026, 11, 1, 1, 30), NEW_YORK) == utc(2026, 11, 1, 5, 30)


def test_a_skipped_time_names_the_end_of_the_gap() -> None:
    # Paris, 29 Mar 2026: 02:00 CET (01:00 UTC) becomes 03:00 CEST.
    wall = datetime(2026, 3, 29, 2, 30)
    assert occurrences(wall, PARIS) == []
    assert resolve(wall, PARIS) == utc(2026, 3, 29, 1, 0)
    # New York, 8 Mar 2026: 02:00 EST (07:00 UTC) becomes 03:00 EDT.
    assert resolve(datetime(2026, 3, 8, 2, 0), NEW_YORK) == utc(2026, 3, 8, 7, 0)
    assert resolve(datetime(2026, 3, 8, 2, 59), NEW_YORK) == utc(2026, 3, 8, 7, 0)


def test_a_zoned_wall_time_is_refused() -> None:
    with pytest.raises(ValueError, match="wall-clock time has no zone"):
        occurrences(utc(2026, 6, 1, 19), PARIS)


def test_the_granularity_must_divide_a_day_in_whole_minutes() -> None:
    check_granularity(timedelta(minutes=15))
    check_granularity(timedelta(days=1))
    for bad in (timedelta(minutes=7), timedelta(seconds=90), timedelta(0), timedelta(days=2)):
        with pytest.raises(ValueError, match="whole minutes dividing a day"):
            check_granularity(bad)


def test_the_grid_counts_from_local_midnight_in_a_45_minute_zone() -> None:
    # Kathmandu is UTC+05:45: its hours start at :15 past the UTC hour.
    hour = timedelta(hours=1)
    assert on_grid(utc(2026, 6, 1, 13, 15), KATHMANDU, hour)  # 19:00 local
    assert not on_grid(utc(2026, 6, 1, 13, 0), KATHMANDU, hour)  # 18:45 local
    assert not on_grid(utc(2026, 6, 1, 13, 15, 1), KATHMANDU, hour)
    span = Interval(utc(2026, 6, 1, 12, 0), utc(2026, 6, 1, 15, 0))
    assert grid_instants(KATHMANDU, hour, span) == [
        utc(2026, 6, 1, 12, 15),
        utc(2026, 6, 1, 13, 15),
        utc(2026, 6, 1, 14, 15),
    ]


def test_the_grid_repeats_the_fall_back_hour_and_skips_the_gap() -> None:
    hour = timedelta(hours=1)
    # Paris, 22:00 UTC Sat 24 Oct to 04:00 UTC Sun: six hours, six hourly
    # starts, the clock showing 00:00, 01:00, 02:00 (CEST), 02:00 (CET), 03:00, 04:00.
    fall = grid_instants(PARIS, hour, Interval(utc(2026, 10, 24, 22), utc(2026, 10, 25, 4)))
    assert [i.astimezone(PARIS).hour for i in fall] == [0, 1, 2, 2, 3, 4]
    # Paris, 29 Mar, 23:00 UTC Sat to 03:00 UTC Sun: local 00:00, 01:00,
    # then 03:00 and 04:00 CEST; no 02:00.
    spring = grid_instants(PARIS, hour, Interval(utc(2026, 3, 28, 23), utc(2026, 3, 29, 3)))
    assert [i.astimezone(PARIS).hour for i in spring] == [0, 1, 3, 4]


def test_a_skipped_time_with_a_fraction_of_a_second_still_finds_the_gap_end() -> None:
    assert resolve(datetime(2026, 3, 29, 2, 0, 0, 600000), PARIS) == utc(2026, 3, 29, 1, 0)
