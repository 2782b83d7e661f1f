"""Proto <-> domain for windowed resources: window rules, units and opening
hours, each field read and checked so that every bad one is named.

- Durations are whole minutes (what the schema stores), at most 366 days;
  the granularity divides a day, min_duration <= max_duration, and the
  buffers, the lead time and the price period are never negative.
- Times of day are "HH:MM" (00:00 to 23:59); a range whose closing is not
  after its opening runs past midnight. One day's ranges may not overlap.
- Dates are "YYYY-MM-DD", local to the resource.
- A unit's name is 1 to 200 characters once trimmed, without control
  characters; its size 1 to MAX_UNIT_SIZE.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from datetime import date, time, timedelta

from google.protobuf.duration_pb2 import Duration

from holdfast.contracts.booking.v1 import inventory_pb2
from holdfast.platform.proto_time import timestamp
from holdfast.platform.validation import Violations
from holdfast.scheduling.hours import WEEKDAYS, OpeningHours, OpeningRange
from holdfast.scheduling.rules import WindowRules
from services.booking.convert import resource, stored_as_proto
from services.booking.domain import ResourceKind, ResourceUnit, WindowTerms
from services.booking.windowed_inventory import WindowSetup

MAX_SPAN = timedelta(days=366)
MAX_UNIT_SIZE = 1000
MAX_UNIT_NAME = 200
# Ranges one day (or one exception) may have: lunch and dinner, with room to spare.
MAX_RANGES_PER_DAY = 12
_MINUTE = timedelta(minutes=1)
_DAY_MINUTES = 24 * 60
_HH_MM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")

# --- window rules ---------------------------------------------------------


def _span(v: Violations, field: str, value: Duration, *, required: bool) -> timedelta | None:
    """A duration of whole minutes from 0 (or 1 when `required`) to MAX_SPAN;
    None when it is not one."""
    seconds, nanos = value.seconds, value.nanos
    if seconds < 0 or nanos < 0:
        v.add(field, "must not be negative")
    elif nanos or seconds % 60:
        v.add(field, "must be whole minutes")
    elif seconds > MAX_SPAN.total_seconds():
        v.add(field, f"must be at most {MAX_SPAN.days} days")
    elif required and seconds == 0:
        v.add(field, "is required: a positive number of minutes")
    else:
        return timedelta(seconds=seconds)
    return None


_SPANS = (
    "min_duration",
    "max_duration",
    "granularity",
    "buffer_before",
    "buffer_after",
    "lead_time",
    "price_period",
)
_REQUIRED = frozenset({"min_duration", "max_duration", "granularity"})


def read_terms(v: Violations, field: str, message: inventory_pb2.WindowRules) -> WindowTerms | None:
    """The rules in `message` (named `field`), or None with their violations added."""
    spans = {
        name: _span(v, f"{field}.{name}", getattr(message, name), required=name in _REQUIRED)
        for name in _SPANS
    }
    valid = None not in spans.values()
    grid = spans["granularity"]
    if grid is not None and (_DAY_MINUTES * _MINUTE) % grid:
        v.add(f"{field}.granularity", "must divide a day (e.g. 5, 15, 30 or 60 minutes)")
        valid = False
    shortest, longest = spans["min_duration"], spans["max_duration"]
    if shortest is not None and longest is not None and longest < shortest:
        v.add(f"{field}.max_duration", "must not be shorter than min_duration")
        valid = False
    if not valid:
        return None
    read = {name: span for name, span in spans.items() if span is not None}
    period = read.pop("price_period")
    return WindowTerms(WindowRules(**read), period)


def _duration(span: timedelta) -> Duration:
    message = Duration()
    message.FromTimedelta(span)
    return message


def terms_message(terms: WindowTerms) -> inventory_pb2.WindowRules:
    rules = terms.rules
    return inventory_pb2.WindowRules(
        min_duration=_duration(rules.min_duration),
        max_duration=_duration(rules.max_duration),
        granularity=_duration(rules.granularity),
        buffer_before=_duration(rules.buffer_before),
        buffer_after=_duration(rules.buffer_after),
        lead_time=_duration(rules.lead_time),
        price_period=_duration(terms.price_period),
    )


def read_kind(v: Violations, value: inventory_pb2.ResourceKind.ValueType) -> ResourceKind | None:
    """A resource's kind; unset is SLOTTED, an unknown number a violation."""
    if value == inventory_pb2.RESOURCE_KIND_UNSPECIFIED:
        return ResourceKind.SLOTTED
    name = inventory_pb2.ResourceKind.Name(value) if value in _KINDS else ""
    if not name:
        v.add("kind", "must be RESOURCE_KIND_SLOTTED or RESOURCE_KIND_WINDOWED")
        return None
    return ResourceKind(name.removeprefix("RESOURCE_KIND_"))


_KINDS = frozenset(inventory_pb2.ResourceKind.values())


def kind_message(kind: ResourceKind) -> inventory_pb2.ResourceKind.ValueType:
    return inventory_pb2.ResourceKind.Value(f"RESOURCE_KIND_{kind.value}")


# --- units ------------------------------------------------------------------


def read_unit_name(v: Violations, field: str, value: str) -> str:
    """The name, trimmed."""
    name = value.strip()
    if not name:
        v.add(field, "is required")
    elif len(name) > MAX_UNIT_NAME:
        v.add(field, f"must be at most {MAX_UNIT_NAME} characters")
    elif any(unicodedata.category(c) == "Cc" for c in name):
        v.add(field, "must not contain control characters")
    return name


def read_unit_size(v: Violations, field: str, value: int) -> int:
    return v.int_range(field, value, 1, MAX_UNIT_SIZE)


def unit_message(unit: ResourceUnit) -> inventory_pb2.Unit:
    return inventory_pb2.Unit(
        unit_id=str(unit.id),
        resource_id=str(unit.resource_id),
        name=unit.name,
        size=unit.size,
        active=unit.active,
        create_time=timestamp(unit.created_at),
    )


def _created_unit(unit: ResourceUnit) -> inventory_pb2.CreateUnitResponse:
    return inventory_pb2.CreateUnitResponse(unit=unit_message(unit))


CREATE_UNIT = stored_as_proto(inventory_pb2.CreateUnitResponse, _created_unit)

# --- opening hours ----------------------------------------------------------


def _time(v: Violations, field: str, text: str) -> time | None:
    match = _HH_MM.match(text)
    if match is None:
        v.add(field, 'must be a time of day "HH:MM", 00:00 to 23:59')
        return None
    return time(int(match.group(1)), int(match.group(2)))


def _minutes(opening: OpeningRange) -> tuple[int, int]:
    """The range in minutes from the day's midnight, past midnight beyond 1440."""
    opens = opening.opens.hour * 60 + opening.opens.minute
    closes = opening.closes.hour * 60 + opening.closes.minute
    return opens, closes if closes > opens else closes + _DAY_MINUTES


def read_ranges(
    v: Violations, field: str, ranges: Sequence[inventory_pb2.OpeningRange]
) -> tuple[OpeningRange, ...]:
    """One day's ranges (`field` names the list), none overlapping another."""
    if len(ranges) > MAX_RANGES_PER_DAY:
        v.add(field, f"must list at most {MAX_RANGES_PER_DAY} ranges")
        return ()
    read: list[tuple[int, OpeningRange]] = []
    for i, given in enumerate(ranges):
        opens = _time(v, f"{field}[{i}].opens", given.opens)
        closes = _time(v, f"{field}[{i}].closes", given.closes)
        if opens is not None and closes is not None:
            read.append((i, OpeningRange(opens, closes)))
    for j, (i, opening) in enumerate(read):
        start, end = _minutes(opening)
        for k, earlier in read[:j]:
            other_start, other_end = _minutes(earlier)
            if start < other_end and other_start < end:
                v.add(f"{field}[{i}]", f"overlaps {field.rsplit('.', 1)[-1]}[{k}]")
                break
    return tuple(opening for _, opening in read)


def read_weekly(
    v: Violations, field: str, weekly: Sequence[inventory_pb2.WeeklyHours]
) -> dict[int, tuple[OpeningRange, ...]]:
    """Ranges by weekday (0 = Monday); each weekday at most once."""
    days: dict[int, tuple[OpeningRange, ...]] = {}
    for i, hours in enumerate(weekly):
        ranges = read_ranges(v, f"{field}[{i}].ranges", hours.ranges)
        if not inventory_pb2.WEEKDAY_MONDAY <= hours.weekday <= inventory_pb2.WEEKDAY_SUNDAY:
            v.add(f"{field}[{i}].weekday", "is required: WEEKDAY_MONDAY to WEEKDAY_SUNDAY")
            continue
        day = hours.weekday - inventory_pb2.WEEKDAY_MONDAY
        if day in days:
            v.add(f"{field}[{i}].weekday", f"lists {WEEKDAYS[day]} a second time")
        days[day] = ranges
    return days


def read_date(v: Violations, field: str, text: str) -> date | None:
    if _DATE.match(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    v.add(field, 'must be a date "YYYY-MM-DD"')
    return None


def _range_message(opening: OpeningRange) -> inventory_pb2.OpeningRange:
    return inventory_pb2.OpeningRange(
        opens=opening.opens.strftime("%H:%M"), closes=opening.closes.strftime("%H:%M")
    )


def hours_message(hours: OpeningHours) -> inventory_pb2.OpeningHours:
    """By weekday (Monday first), then by date; closed weekdays are left out."""
    return inventory_pb2.OpeningHours(
        weekly=[
            inventory_pb2.WeeklyHours(
                weekday=inventory_pb2.Weekday.ValueType(inventory_pb2.WEEKDAY_MONDAY + day),
                ranges=[_range_message(r) for r in ranges],
            )
            for day, ranges in sorted(hours.weekly.items())
            if ranges
        ],
        exceptions=[
            inventory_pb2.HoursException(
                date=day.isoformat(), ranges=[_range_message(r) for r in ranges]
            )
            for day, ranges in sorted(hours.exceptions.items())
        ],
    )


def setup_message(setup: WindowSetup) -> inventory_pb2.GetWindowSetupResponse:
    return inventory_pb2.GetWindowSetupResponse(
        resource=resource(setup.resource),
        rules=terms_message(setup.terms),
        units=[unit_message(u) for u in setup.units],
        hours=hours_message(setup.hours),
    )
