"""A windowed resource's rules: what a window must satisfy, and its buffers."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from holdfast.scheduling.hours import OpeningHours, OpeningRange
from holdfast.scheduling.intervals import Interval
from holdfast.scheduling.rules import WindowRules, buffered, window_problem

PARIS = ZoneInfo("Europe/Paris")
MINUTE = timedelta(minutes=1)
RULES = WindowRules(
    min_duration=timedelta(hours=1),
    max_duration=timedelta(hours=3),
    granularity=15 * MINUTE,
    buffer_before=5 * MINUTE,
    buffer_after=15 * MINUTE,
    lead_time=timedelta(hours=2),
)
# Every day 12:00-14:30 and 19:00-23:00 in Paris (UTC+2 in June).
HOURS = OpeningHours(
    PARIS,
    {d: (OpeningRange(time(12), time(14, 30)), OpeningRange(time(19), time(23))) for d in range(7)},
)
NOW = datetime(2026, 6, 1, 8, tzinfo=UTC)  # 10:00 in Paris


def paris(hour: int, minute: int = 0, day: int = 1) -> datetime:
    return datetime(2026, 6, day, hour, minute, tzinfo=PARIS)


def window(start: datetime, hours: float) -> Interval:
    return Interval(start, start + timedelta(hours=hours))


def test_a_window_inside_hours_on_the_grid_and_beyond_the_lead_time_is_bookable() -> None:
    assert window_problem(RULES, HOURS, window(paris(19, 30), 2), NOW) is None
    # The last seating ends exactly at closing.
    assert window_problem(RULES, HOURS, window(paris(20), 3), NOW) is None
    # Exactly at the lead time is allowed: 10:00 + 2 h.
    assert window_problem(RULES, HOURS, window(paris(12), 1), NOW) is None


@pytest.mark.parametrize(
    ("start", "hours", "problem"),
    [
        (paris(19), 0.75, "window: shorter than the minimum duration of 60 minutes"),
        (paris(19), 3.25, "window: longer than the maximum duration of 180 minutes"),
        (
            paris(19, 10),
            2,
            "window.start: not on the 15 minutes grid counted from midnight in Europe/Paris",
        ),
        (paris(11, 45), 1, "window.start: inside the lead time of 120 minutes"),
        (paris(21, 15), 2, "window: outside the opening hours"),
        (paris(14), 1, "window: outside the opening hours"),
        (paris(16), 1, "window: outside the opening hours"),
    ],
)
def test_a_window_that_breaks_a_rule_is_refused_naming_the_field(
    start: datetime, hours: float, problem: str
) -> None:
    assert window_problem(RULES, HOURS, window(start, hours), NOW) == problem


def test_a_window_may_span_two_ranges_that_touch_and_run_past_midnight() -> None:
    late = OpeningHours(
        PARIS, {0: (OpeningRange(time(18), time(22)), OpeningRange(time(22), time(1)))}
    )
    # Monday 1 June 23:00 to Tuesday 01:00, inside Monday's late range.
    assert window_problem(RULES, late, window(paris(23), 2), NOW) is None
    assert window_problem(RULES, late, window(paris(21), 2), NOW) is None
    assert window_problem(RULES, late, window(paris(0, day=2), 1), NOW) is None
    assert window_problem(RULES, late, window(paris(0, 15, day=2), 1), NOW) == (
        "window: outside the opening hours"
    )
    # Tuesday has no hours of its own, so Wednesday's small hours are closed.
    assert window_problem(RULES, late, window(paris(0, day=3), 1), NOW) == (
        "window: outside the opening hours"
    )


def test_the_buffers_widen_the_guarded_interval_but_need_not_be_open() -> None:
    last = window(paris(21), 2)
    assert buffered(last, RULES) == Interval(paris(20, 55), paris(23, 15))
    # The after-buffer runs past closing at 23:00, and that is fine.
    assert window_problem(RULES, HOURS, last, NOW) is None


def test_rules_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="whole minutes dividing a day"):
        WindowRules(timedelta(hours=1), timedelta(hours=2), granularity=7 * MINUTE)
    with pytest.raises(ValueError, match="min_duration <= max_duration"):
        WindowRules(timedelta(hours=3), timedelta(hours=2), granularity=15 * MINUTE)
    with pytest.raises(ValueError, match="0 < min_duration"):
        WindowRules(timedelta(0), timedelta(hours=2), granularity=15 * MINUTE)
    with pytest.raises(ValueError, match="buffer_after must not be negative"):
        WindowRules(timedelta(hours=1), timedelta(hours=2), 15 * MINUTE, buffer_after=-MINUTE)
