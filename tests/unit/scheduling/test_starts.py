"""Bookable start times, free intervals and the unit a window goes to,
including the days the clocks change."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from holdfast.scheduling.hours import OpeningHours, OpeningRange
from holdfast.scheduling.intervals import Interval
from holdfast.scheduling.rules import WindowRules
from holdfast.scheduling.starts import Unit, best_unit, bookable_starts, free_intervals

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
SATURDAY = 5
LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)
BAR = [Unit("bar", 10)]
# A bar open Saturday 22:00 to Sunday 06:00; one-hour bookings every 30 minutes.
BAR_RULES = WindowRules(min_duration=HOUR, max_duration=3 * HOUR, granularity=30 * MINUTE)
BAR_HOURS = (OpeningRange(time(22), time(6)),)


def saturday_night(zone: str, saturday: date) -> list[datetime]:
    hours = OpeningHours(ZoneInfo(zone), {SATURDAY: BAR_HOURS})
    return bookable_starts(BAR_RULES, hours, saturday, saturday, HOUR, 2, BAR, {}, LONG_AGO)


def shown(zone: str, starts: list[datetime]) -> list[str]:
    return [s.astimezone(ZoneInfo(zone)).strftime("%H:%M%z") for s in starts]


# An ordinary night: 22:00 to 06:00 is 8 hours; a one-hour window must start
# by 05:00, so starts 22:00 ... 05:00 every 30 minutes: 7 h / 0.5 + 1 = 15.
# Spring forward: 02:00 and 02:30 do not exist; 22:00 ... 01:30 (8) and
# 03:00 ... 05:00 (5): 13, and the night lasts 7 hours.
# Fall back: 02:00 and 02:30 (Paris, Adelaide) or 01:00 and 01:30 (New York)
# happen twice: 15 + 2 = 17, and the night lasts 9 hours.
@pytest.mark.parametrize(
    ("zone", "saturday", "count"),
    [
        ("Europe/Paris", date(2026, 6, 6), 15),
        ("Europe/Paris", date(2026, 3, 28), 13),  # 29 Mar 02:00 CET -> 03:00 CEST
        ("Europe/Paris", date(2026, 10, 24), 17),  # 25 Oct 03:00 CEST -> 02:00 CET
        ("America/New_York", date(2026, 6, 6), 15),
        ("America/New_York", date(2026, 3, 7), 13),  # 8 Mar 02:00 EST -> 03:00 EDT
        ("America/New_York", date(2026, 10, 31), 17),  # 1 Nov 02:00 EDT -> 01:00 EST
        ("Australia/Adelaide", date(2026, 4, 4), 17),  # 5 Apr 03:00 ACDT -> 02:00 ACST
        ("Australia/Adelaide", date(2026, 10, 3), 13),  # 4 Oct 02:00 ACST -> 03:00 ACDT
    ],
)
def test_a_night_across_a_clock_change_has_the_starts_its_clock_shows(
    zone: str, saturday: date, count: int
) -> None:
    starts = saturday_night(zone, saturday)
    assert len(starts) == count
    assert len(set(starts)) == count
    assert shown(zone, starts)[0].startswith("22:00")
    assert shown(zone, starts)[-1].startswith("05:00")


def test_the_spring_gap_skips_its_starts_and_the_repeated_hour_offers_both() -> None:
    spring = shown("Europe/Paris", saturday_night("Europe/Paris", date(2026, 3, 28)))
    assert spring[6:10] == ["01:00+0100", "01:30+0100", "03:00+0200", "03:30+0200"]
    fall = shown("America/New_York", saturday_night("America/New_York", date(2026, 10, 31)))
    assert fall[5:12] == [
        "00:30-0400",
        "01:00-0400",
        "01:30-0400",
        "01:00-0500",
        "01:30-0500",
        "02:00-0500",
        "02:30-0500",
    ]


def test_a_dinner_on_a_clock_change_day_has_its_usual_starts() -> None:
    # Paris, Sunday 29 March 2026 (spring forward at 02:00): dinner 19:00-23:00,
    # two hours every 15 minutes: 19:00 ... 21:00 is 2 h / 0.25 + 1 = 9 starts.
    rules = WindowRules(2 * HOUR, 2 * HOUR, 15 * MINUTE)
    hours = OpeningHours(ZoneInfo("Europe/Paris"), {6: (OpeningRange(time(19), time(23)),)})
    day = date(2026, 3, 29)
    starts = bookable_starts(rules, hours, day, day, 2 * HOUR, 2, BAR, {}, LONG_AGO)
    assert len(starts) == 9
    assert starts[0] == datetime(2026, 3, 29, 17, tzinfo=UTC)


def test_a_45_minute_zone_offers_its_hours_at_quarter_past_utc() -> None:
    # Kathmandu is UTC+05:45; dinner 18:00-22:00, one hour, hourly: 18:00,
    # 19:00, 20:00, 21:00 local = 12:15, 13:15, 14:15, 15:15 UTC. A grid counted
    # in UTC would offer 13:00, 14:00, 15:00 (three, all wrong).
    rules = WindowRules(HOUR, HOUR, HOUR)
    hours = OpeningHours(ZoneInfo("Asia/Kathmandu"), {0: (OpeningRange(time(18), time(22)),)})
    day = date(2026, 6, 1)  # a Monday
    starts = bookable_starts(rules, hours, day, day, HOUR, 1, BAR, {}, LONG_AGO)
    assert starts == [datetime(2026, 6, 1, h, 15, tzinfo=UTC) for h in (12, 13, 14, 15)]


def test_a_30_minute_zone_keeps_its_offset_across_its_own_clock_change() -> None:
    # Adelaide: ACDT UTC+10:30 until 5 Apr 2026, then ACST UTC+09:30. Lunch
    # 12:00-14:00, one hour, hourly: 12:00 and 13:00 local both days =
    # 01:30, 02:30 UTC on Saturday 4 April and 02:30, 03:30 UTC on Sunday 5 April.
    rules = WindowRules(HOUR, HOUR, HOUR)
    lunch = (OpeningRange(time(12), time(14)),)
    hours = OpeningHours(ZoneInfo("Australia/Adelaide"), {5: lunch, 6: lunch})
    starts = bookable_starts(
        rules, hours, date(2026, 4, 4), date(2026, 4, 5), HOUR, 1, BAR, {}, LONG_AGO
    )
    assert starts == [
        datetime(2026, 4, 4, 1, 30, tzinfo=UTC),
        datetime(2026, 4, 4, 2, 30, tzinfo=UTC),
        datetime(2026, 4, 5, 2, 30, tzinfo=UTC),
        datetime(2026, 4, 5, 3, 30, tzinfo=UTC),
    ]


PARIS = ZoneInfo("Europe/Paris")
DAY = date(2026, 6, 1)  # a Monday; Paris is UTC+2
DINNER = OpeningHours(PARIS, {0: (OpeningRange(time(17), time(23)),)})
TURNOVER = WindowRules(2 * HOUR, 2 * HOUR, 15 * MINUTE, buffer_after=15 * MINUTE)
TABLES = [Unit("T6", 6), Unit("T4b", 4), Unit("T2", 2), Unit("T4a", 4), Unit("T8", 8, active=False)]


def paris(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 6, 1, hour, minute, tzinfo=PARIS)


def local_starts(rules: WindowRules, busy: dict[str, list[Interval]], now: datetime) -> list[str]:
    units = [Unit("T4", 4)]
    starts = bookable_starts(rules, DINNER, DAY, DAY, 2 * HOUR, 4, units, busy, now)
    return [s.astimezone(PARIS).strftime("%H:%M") for s in starts]


def test_buffers_keep_turnover_clear_between_bookings() -> None:
    # 17:00-23:00, two hours every 15 minutes: 17:00 ... 21:00 = 17 starts.
    assert len(local_starts(TURNOVER, {}, LONG_AGO)) == 17
    # A 17:00-18:00 booking with 15 minutes after: busy 17:00-18:15. A new
    # window's own buffer ends 2 h 15 after it starts, so nothing before 18:15
    # fits (it would need to end by 17:00); 18:15 ... 21:00 = 12 starts.
    busy = {"T4": [Interval(paris(17), paris(18, 15))]}
    starts = local_starts(TURNOVER, busy, LONG_AGO)
    assert starts[0] == "18:15"
    assert len(starts) == 12
    # With 15 minutes before as well, the new window's buffer starts 15
    # minutes early: 18:30 ... 21:00 = 11 starts.
    both = WindowRules(2 * HOUR, 2 * HOUR, 15 * MINUTE, 15 * MINUTE, 15 * MINUTE)
    assert local_starts(both, busy, LONG_AGO)[0] == "18:30"
    assert len(local_starts(both, busy, LONG_AGO)) == 11


def test_the_lead_time_hides_starts_too_soon() -> None:
    rules = WindowRules(2 * HOUR, 2 * HOUR, 15 * MINUTE, lead_time=HOUR)
    # At 18:10 with an hour's lead: 19:10 at the earliest, so 19:15 ... 21:00 = 8.
    starts = local_starts(rules, {}, paris(18, 10))
    assert starts[0] == "19:15"
    assert len(starts) == 8
    # Exactly on the lead time is allowed: at 18:15, 19:15 is still offered.
    assert local_starts(rules, {}, paris(18, 15))[0] == "19:15"


def test_closed_days_and_special_hours_change_the_starts() -> None:
    rules = WindowRules(2 * HOUR, 2 * HOUR, HOUR)
    week = {d: (OpeningRange(time(18), time(22)),) for d in range(7)}
    hours = OpeningHours(
        PARIS,
        week,
        exceptions={date(2026, 6, 2): (), date(2026, 6, 3): (OpeningRange(time(12), time(15)),)},
    )
    # Monday 18:00, 19:00, 20:00; Tuesday closed; Wednesday 12:00, 13:00.
    starts = bookable_starts(
        rules, hours, date(2026, 6, 1), date(2026, 6, 3), 2 * HOUR, 2, BAR, {}, LONG_AGO
    )
    assert [s.astimezone(PARIS).strftime("%a %H:%M") for s in starts] == [
        "Mon 18:00",
        "Mon 19:00",
        "Mon 20:00",
        "Wed 12:00",
        "Wed 13:00",
    ]


def test_a_duration_the_rules_refuse_or_a_party_no_unit_fits_gets_no_starts() -> None:
    assert bookable_starts(TURNOVER, DINNER, DAY, DAY, HOUR, 2, TABLES, {}, LONG_AGO) == []
    # T8 would fit 7, but it is retired.
    assert bookable_starts(TURNOVER, DINNER, DAY, DAY, 2 * HOUR, 7, TABLES, {}, LONG_AGO) == []
    assert len(bookable_starts(TURNOVER, DINNER, DAY, DAY, 2 * HOUR, 6, TABLES, {}, LONG_AGO)) == 17


def test_the_best_unit_is_the_smallest_free_one_that_fits_then_by_name() -> None:
    window = Interval(paris(19, 30), paris(21, 45))
    assert best_unit(TABLES, 3, {}, window) == Unit("T4a", 4)
    assert best_unit(TABLES, 2, {}, window) == Unit("T2", 2)
    taken = [Interval(paris(21, 30), paris(23))]
    assert best_unit(TABLES, 3, {"T4a": taken}, window) == Unit("T4b", 4)
    assert best_unit(TABLES, 3, {"T4a": taken, "T4b": taken}, window) == Unit("T6", 6)
    assert best_unit(TABLES, 3, {"T4a": taken, "T4b": taken, "T6": taken}, window) is None
    # Touching is not overlapping: a window ending as another begins is free.
    assert best_unit(TABLES, 3, {"T4a": [Interval(paris(21, 45), paris(23))]}, window) == Unit(
        "T4a", 4
    )
    with pytest.raises(ValueError, match="party_size must be at least 1"):
        best_unit(TABLES, 0, {}, window)


def test_free_intervals_are_each_fitting_units_open_hours_less_its_busy_ones() -> None:
    busy = {"T4a": [Interval(paris(19), paris(21, 15))], "T6": [Interval(paris(16), paris(18))]}
    free = free_intervals(DINNER, DAY, DAY, TABLES, busy, party_size=3)
    assert list(free) == ["T4a", "T4b", "T6"]
    assert free["T4a"] == [Interval(paris(17), paris(19)), Interval(paris(21, 15), paris(23))]
    assert free["T4b"] == [Interval(paris(17), paris(23))]
    assert free["T6"] == [Interval(paris(18), paris(23))]
