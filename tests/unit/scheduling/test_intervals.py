"""Half-open UTC intervals and their arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from holdfast.scheduling.intervals import Interval, covers, intersect, merge, subtract


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 6, 1, hour, minute, tzinfo=UTC)


def iv(start: int, end: int) -> Interval:
    return Interval(at(start), at(end))


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="start must be time-zone aware"):
        Interval(datetime(2026, 6, 1, 19), at(21))
    with pytest.raises(ValueError, match="end must be time-zone aware"):
        Interval(at(19), datetime(2026, 6, 1, 21))


def test_an_empty_or_backwards_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="must be after start"):
        Interval(at(19), at(19))
    with pytest.raises(ValueError, match="must be after start"):
        Interval(at(21), at(19))


def test_an_interval_is_held_in_utc_whatever_zone_it_was_given_in() -> None:
    paris_summer = timezone(timedelta(hours=2))
    interval = Interval(datetime(2026, 6, 1, 21, tzinfo=paris_summer), at(21))
    assert interval.start == at(19)
    assert interval.start.tzinfo is UTC
    assert interval.duration == timedelta(hours=2)


def test_back_to_back_windows_do_not_overlap() -> None:
    assert not iv(19, 21).overlaps(iv(21, 23))
    assert iv(19, 21).overlaps(Interval(at(20, 59), at(23)))
    assert iv(19, 21).contains(iv(19, 21))
    assert not iv(19, 21).contains(Interval(at(19), at(21, 1)))
    assert iv(19, 21).contains_instant(at(19))
    assert not iv(19, 21).contains_instant(at(21))


def test_merge_joins_overlapping_and_touching_intervals_in_order() -> None:
    assert merge([iv(20, 22), iv(8, 10), iv(9, 12), iv(12, 13), iv(21, 22)]) == [
        iv(8, 13),
        iv(20, 22),
    ]


def test_subtract_cuts_holes_and_ends() -> None:
    assert subtract([iv(8, 22)], [iv(7, 9), iv(12, 13), iv(13, 14), iv(21, 23)]) == [
        iv(9, 12),
        iv(14, 21),
    ]
    assert subtract([iv(8, 10)], [iv(8, 10)]) == []
    assert subtract([iv(8, 10), iv(12, 14)], []) == [iv(8, 10), iv(12, 14)]


def test_intersect_keeps_what_both_hold() -> None:
    assert intersect([iv(8, 12), iv(14, 20)], [iv(10, 15), iv(19, 23)]) == [
        iv(10, 12),
        iv(14, 15),
        iv(19, 20),
    ]
    assert intersect([iv(8, 10)], [iv(10, 12)]) == []


def test_covers_needs_the_whole_window_inside_the_joined_intervals() -> None:
    assert covers([iv(8, 12), iv(12, 14)], iv(11, 13))
    assert not covers([iv(8, 12), iv(13, 14)], iv(11, 13))
    assert not covers([], iv(11, 13))
