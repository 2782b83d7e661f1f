"""Window availability's pure parts: the cached inputs travel through Redis
unchanged, cover every busy window that can matter, and give answers
computed at each request's own time."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from holdfast.scheduling.hours import OpeningRange
from holdfast.scheduling.intervals import Interval
from holdfast.scheduling.rules import WindowRules, buffered
from holdfast.scheduling.starts import Unit
from services.availability.window_inputs import (
    WindowInputs,
    busy_span,
    exception_days,
    span_key,
)
from services.availability.windows import window_availability

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
PARIS = ZoneInfo("Europe/Paris")
SATURDAY = date(2030, 6, 1)
RULES = WindowRules(
    HOUR,
    3 * HOUR,
    15 * MINUTE,
    buffer_before=10 * MINUTE,
    buffer_after=15 * MINUTE,
    lead_time=2 * HOUR,
)
UNITS = (Unit("T2", 2), Unit("T4", 4))
IDS = {"T2": uuid.UUID(int=2), "T4": uuid.UUID(int=4)}


def paris(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=PARIS).astimezone(UTC)


def inputs(busy: Mapping[str, tuple[Interval, ...]] | None = None) -> WindowInputs:
    return WindowInputs(
        time_zone="Europe/Paris",
        rules=RULES,
        units=UNITS,
        unit_ids=IDS,
        weekly={5: (OpeningRange(time(18), time(2)),)},  # Saturday 18:00 to Sunday 02:00
        exceptions={date(2030, 6, 8): ()},
        busy=dict(busy or {}),
    )


def test_inputs_travel_through_redis_unchanged() -> None:
    taken = {"T2": (Interval(paris(SATURDAY, 19), paris(SATURDAY, 21, 15)),)}
    original = inputs(taken)
    again = WindowInputs.from_bytes(original.to_bytes())
    assert again == original
    assert again.hours == original.hours


def test_window_spans_never_look_like_slot_spans() -> None:
    assert span_key(SATURDAY, SATURDAY) == "w:2030-06-01:2030-06-01"


def test_the_busy_span_covers_every_guarded_window_that_can_matter() -> None:
    span = busy_span(PARIS, RULES, SATURDAY, SATURDAY)
    earliest = Interval(paris(SATURDAY, 18), paris(SATURDAY, 19))
    # The latest start of Saturday's hours, on Sunday, for the longest stay.
    latest = Interval(paris(SATURDAY + timedelta(days=1), 1), paris(SATURDAY, 23) + 5 * HOUR)
    assert span.contains(buffered(earliest, RULES))
    assert span.contains(buffered(latest, RULES))
    first, last = exception_days(RULES, SATURDAY, SATURDAY)
    assert first < SATURDAY
    assert last > latest.end.astimezone(PARIS).date()


def test_each_request_computes_at_its_own_time() -> None:
    cached = WindowInputs.from_bytes(inputs().to_bytes())
    early = window_availability(
        uuid.UUID(int=1), cached, SATURDAY, SATURDAY, 2, HOUR, paris(SATURDAY, 12)
    )
    later = window_availability(
        uuid.UUID(int=1), cached, SATURDAY, SATURDAY, 2, HOUR, paris(SATURDAY, 19, 1)
    )
    early_starts = [s.start_time.ToDatetime(UTC) for s in early.starts]
    later_starts = [s.start_time.ToDatetime(UTC) for s in later.starts]
    assert early_starts[0] == paris(SATURDAY, 18)
    # 19:01 plus two hours' lead time: 21:15 is the first start still offered.
    assert later_starts[0] == paris(SATURDAY, 21, 15)
    assert later_starts == [s for s in early_starts if s >= later_starts[0]]


def test_each_start_names_the_unit_a_hold_would_get() -> None:
    # T2 is taken 19:00-21:00 (guarded 18:50-21:15): a couple gets T4 then.
    taken = {"T2": (Interval(paris(SATURDAY, 18, 50), paris(SATURDAY, 21, 15)),)}
    answer = window_availability(
        uuid.UUID(int=1), inputs(taken), SATURDAY, SATURDAY, 2, HOUR, paris(SATURDAY, 12)
    )
    units = {s.start_time.ToDatetime(UTC): s.unit_id for s in answer.starts}
    assert units[paris(SATURDAY, 18)] == str(IDS["T4"])  # guarded 17:50-19:15 meets T2's
    assert units[paris(SATURDAY, 21, 30)] == str(IDS["T2"])
    assert [u.name for u in answer.units] == ["T2", "T4"]
    assert answer.units[0].free[0].end_time.ToDatetime(UTC) == paris(SATURDAY, 18, 50)
