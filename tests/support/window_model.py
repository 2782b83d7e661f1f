"""The model tests/integration/booking/test_window_model.py checks the booking
service against: per unit of one windowed resource, the buffered windows of
its live holds and bookings, the days' opening hours, and which unit a hold
for a party gets (the smallest free active one that fits, then by name)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from holdfast.scheduling.intervals import Interval

ZONE = ZoneInfo("Europe/Lisbon")
# A Tuesday and a Wednesday in summer (UTC+1), far from now: no lead time, no DST.
DAYS = (date(2031, 6, 3), date(2031, 6, 4))
UNIT_NAMES = ("U1", "U2", "U3")
WEEKLY = ((time(10), time(22)),)
# What an hours step sets on a day: closed, or special ranges.
SPECIAL_HOURS: tuple[tuple[tuple[time, time], ...], ...] = (
    (),
    ((time(12), time(16)),),
    ((time(10), time(14)), (time(18), time(23))),
)
GRID = timedelta(minutes=30)
DURATIONS = (60, 90, 120, 180)  # minutes, within the rules' 1 to 3 hours
BUFFER_BEFORE = timedelta(minutes=15)
BUFFER_AFTER = timedelta(minutes=30)
PAYMENTS = ("pi_a", "pi_b")
LIVE = ("HELD", "CONFIRMED")
SOLD_OUT = "FAILED_PRECONDITION:SOLD_OUT"
OUTSIDE_HOURS = "INVALID_ARGUMENT:window"


@dataclass
class ModelUnit:
    name: str
    size: int
    unit_id: str = ""
    active: bool = True


@dataclass
class ModelHold:
    hold_id: str
    unit: str
    window: Interval
    status: str = "HELD"
    payment_ref: str = ""

    @property
    def guarded(self) -> Interval:
        return Interval(self.window.start - BUFFER_BEFORE, self.window.end + BUFFER_AFTER)


@dataclass
class Model:
    units: list[ModelUnit]
    holds: list[ModelHold] = field(default_factory=list)
    # The days whose hours an exception replaced.
    special: dict[date, tuple[tuple[time, time], ...]] = field(default_factory=dict)

    def free_on(self, unit: ModelUnit, guarded: Interval) -> bool:
        return not any(
            h.unit == unit.name and h.status in LIVE and h.guarded.overlaps(guarded)
            for h in self.holds
        )

    def within_hours(self, day: date, window: Interval) -> bool:
        for opens, closes in self.special.get(day, WEEKLY):
            start = datetime.combine(day, opens, tzinfo=ZONE)
            end = datetime.combine(day, closes, tzinfo=ZONE)
            if start <= window.start and window.end <= end:
                return True
        return False

    def pick(self, party: int, guarded: Interval) -> ModelUnit | None:
        """The unit a hold for `party` gets: the smallest free active one, then by name."""
        fits = sorted(
            (u for u in self.units if u.active and u.size >= party), key=lambda u: (u.size, u.name)
        )
        return next((u for u in fits if self.free_on(u, guarded)), None)

    def fits_any(self, party: int) -> bool:
        return any(u.active and u.size >= party for u in self.units)

    def live_windows(self) -> set[tuple[str, datetime, datetime, int, int]]:
        return {
            (
                h.unit,
                h.window.start,
                h.window.end,
                int(h.guarded.start.timestamp()),
                int(h.guarded.end.timestamp()),
            )
            for h in self.holds
            if h.status in LIVE
        }


def window_of(spec: tuple[int, int, int]) -> tuple[date, Interval]:
    day_index, start_index, minutes = spec
    day = DAYS[day_index]
    start = datetime.combine(day, time(9), tzinfo=ZONE) + start_index * GRID
    return day, Interval(
        start.astimezone(UTC), (start + timedelta(minutes=minutes)).astimezone(UTC)
    )
