"""The guarded window as the exclusion constraint stores it: whole epoch
seconds, never smaller than asked, and within the bounds that keep one unit's
windows off the next unit's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from holdfast.scheduling.intervals import Interval
from holdfast.scheduling.stored import GUARD_RANGE, guard_seconds

SEVEN = datetime(2030, 6, 1, 19, 0, tzinfo=UTC)


def test_whole_seconds_are_kept_as_they_are() -> None:
    start, end = guard_seconds(Interval(SEVEN, SEVEN + timedelta(hours=2)))
    assert (start, end) == (int(SEVEN.timestamp()), int(SEVEN.timestamp()) + 7200)


def test_fractions_round_outwards() -> None:
    half = timedelta(milliseconds=500)
    start, end = guard_seconds(Interval(SEVEN + half, SEVEN + timedelta(hours=2) - half))
    assert (start, end) == (int(SEVEN.timestamp()), int(SEVEN.timestamp()) + 7200)


def test_touching_windows_stay_apart() -> None:
    first = guard_seconds(Interval(SEVEN, SEVEN + timedelta(hours=2)))
    second = guard_seconds(Interval(SEVEN + timedelta(hours=2), SEVEN + timedelta(hours=4)))
    assert first[1] == second[0]


@pytest.mark.parametrize(
    "window",
    [
        Interval(datetime(1969, 12, 31, 23, tzinfo=UTC), datetime(1970, 1, 1, 1, tzinfo=UTC)),
        Interval(datetime(2106, 2, 7, 6, tzinfo=UTC), datetime(2106, 2, 7, 7, tzinfo=UTC)),
    ],
)
def test_windows_outside_the_encoding_are_refused(window: Interval) -> None:
    with pytest.raises(ValueError, match="1970-2106"):
        guard_seconds(window)


def test_the_largest_encoded_value_fits_a_bigint() -> None:
    largest_unit_key = 2**31 - 1
    assert largest_unit_key * 2**32 + GUARD_RANGE[1] == 2**63 - 1
