"""A property of the start times, over random busy units, hours and clocks:
every start offered can be booked (a free unit that fits, its buffered window
clear of that unit's busy intervals, the window on the grid and within open
hours), and every instant of the day's hours not offered has a reason
(window_problem says why, or no unit that fits is free)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from holdfast.scheduling.hours import OpeningHours, OpeningRange, open_intervals
from holdfast.scheduling.intervals import Interval
from holdfast.scheduling.rules import WindowRules, buffered, window_problem
from holdfast.scheduling.starts import Unit, best_unit, bookable_starts

MINUTE = timedelta(minutes=1)
# Few units, so that the buffers, not another free unit, often decide.
UNITS = [Unit("A", 2), Unit("B", 4), Unit("C", 4), Unit("D", 6, active=False)]
ZONES = ["Europe/Paris", "America/New_York", "Asia/Kathmandu", "Australia/Adelaide"]
# Saturdays before both clock changes in Paris and New York, and an ordinary one.
SATURDAYS = [date(2026, d, n) for d, n in ((3, 7), (3, 28), (6, 6), (10, 24), (10, 31))]
RANGES = [
    OpeningRange(time(12), time(14, 30)),
    OpeningRange(time(18), time(23)),
    OpeningRange(time(22, 30), time(3, 15)),  # past midnight, across the changes
    OpeningRange(time(2, 30), time(4)),  # may open in a gap or a repeated hour
]


@st.composite
def scenarios(
    draw: st.DrawFn,
) -> tuple[WindowRules, OpeningHours, date, timedelta, int, dict[str, list[Interval]], datetime]:
    zone = ZoneInfo(draw(st.sampled_from(ZONES)))
    saturday = draw(st.sampled_from(SATURDAYS))
    ranges = draw(st.lists(st.sampled_from(RANGES), min_size=1, max_size=3, unique=True))
    sunday = draw(st.lists(st.sampled_from(RANGES), max_size=2, unique=True))
    hours = OpeningHours(zone, {5: tuple(ranges), 6: tuple(sunday)})
    minutes = st.sampled_from([0, 5, 15, 30, 60]).map(lambda m: m * MINUTE)
    rules = WindowRules(
        min_duration=60 * MINUTE,
        max_duration=180 * MINUTE,
        granularity=draw(st.sampled_from([15, 30, 45, 60])) * MINUTE,
        buffer_before=draw(minutes),
        buffer_after=draw(minutes),
        lead_time=draw(st.sampled_from([0, 60, 120])) * MINUTE,
    )
    duration = draw(st.sampled_from([45, 60, 60, 90, 120, 180])) * MINUTE
    # Busy intervals from Saturday 11:00 to Sunday 05:00 local, where the hours
    # are, so that they meet the windows offered; the clock from 08:00 to 19:00.
    base = datetime.combine(saturday, time(11), tzinfo=zone).astimezone(UTC)
    busy: dict[str, list[Interval]] = {}
    for unit in UNITS:
        taken = draw(st.lists(st.tuples(st.integers(0, 18 * 12), st.integers(1, 36)), max_size=6))
        busy[unit.name] = [
            Interval(base + start * 5 * MINUTE, base + (start + length) * 5 * MINUTE)
            for start, length in taken
        ]
    party = draw(st.sampled_from([1, 2, 3, 4, 6]))
    now = base + draw(st.integers(-36, 8 * 12)) * 5 * MINUTE
    return rules, hours, saturday, duration, party, busy, now


def clock_minutes(instant: datetime, zone: ZoneInfo) -> int:
    shown = instant.astimezone(zone)
    assert shown.second == 0
    assert shown.microsecond == 0
    return shown.hour * 60 + shown.minute


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_every_start_offered_is_bookable_and_every_other_has_a_reason(
    scenario: tuple[
        WindowRules, OpeningHours, date, timedelta, int, dict[str, list[Interval]], datetime
    ],
) -> None:
    rules, hours, saturday, duration, party, busy, now = scenario
    offered = bookable_starts(rules, hours, saturday, saturday, duration, party, UNITS, busy, now)
    assert offered == sorted(set(offered))
    own = open_intervals(hours, saturday, saturday)
    wider = open_intervals(hours, saturday - timedelta(days=1), saturday + timedelta(days=2))

    for start in offered:
        window = Interval(start, start + duration)
        assert any(piece.contains_instant(start) for piece in own)
        assert any(piece.contains(window) for piece in wider)
        assert clock_minutes(start, hours.zone) % (rules.granularity // MINUTE) == 0
        assert rules.min_duration <= duration <= rules.max_duration
        assert start >= now + rules.lead_time
        guarded = buffered(window, rules)
        unit = best_unit(UNITS, party, busy, guarded)
        assert unit is not None
        assert unit.active
        assert unit.size >= party
        assert not any(taken.overlaps(guarded) for taken in busy[unit.name])

    # Every 5 minutes of the day's hours, not just the grid: the grid itself
    # is one of the reasons.
    for piece in own:
        candidate = piece.start
        while candidate < piece.end:
            if candidate not in offered:
                window = Interval(candidate, candidate + duration)
                problem = window_problem(rules, hours, window, now)
                unit = best_unit(UNITS, party, busy, buffered(window, rules))
                assert problem is not None or unit is None, candidate
            candidate += 5 * MINUTE
