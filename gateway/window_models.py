"""The JSON of windowed resources: window rules, units and opening hours.

Durations are whole minutes in integer fields named `..._minutes`, as the
rules are stored (a hold's TTL, which is seconds, is `ttl_seconds`). Times
of day are "HH:MM" in the resource's time zone, dates "YYYY-MM-DD". What a
schema can say is said here; the rest (min_duration <= max_duration, one
day's ranges not overlapping, each weekday once, a date that exists) the
booking service checks, naming the field.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema

from gateway import models
from gateway.models import _a_number

# What the booking service takes (services/booking/convert_windows.py).
MAX_SPAN_MINUTES = 366 * 24 * 60
MAX_UNIT_SIZE = 1000
MAX_RANGES_PER_DAY = 12
# Every granularity that divides a day, so that a schema can list them.
GRANULARITIES = tuple(m for m in range(1, 24 * 60 + 1) if (24 * 60) % m == 0)

# A JSON integer (not `true`, not "1"), bounds first so the document states them.
Minutes = Annotated[int, Field(ge=0, le=MAX_SPAN_MINUTES), BeforeValidator(_a_number)]
PositiveMinutes = Annotated[int, Field(ge=1, le=MAX_SPAN_MINUTES), BeforeValidator(_a_number)]


def _divides_a_day(value: int) -> int:
    if value not in GRANULARITIES:
        raise ValueError("must divide a day (e.g. 5, 15, 30 or 60 minutes)")
    return value


Granularity = Annotated[
    int,
    BeforeValidator(_a_number),
    AfterValidator(_divides_a_day),
    WithJsonSchema({"type": "integer", "enum": list(GRANULARITIES)}),
]
ResourceKind = Literal["slotted", "windowed"]
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS: tuple[Weekday, ...] = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)
# No control characters (C0, DEL, C1), and not blank.
_UNIT_NAME = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
TIME_OF_DAY = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
DATE = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"


class WindowRules(models.Strict):
    min_duration_minutes: PositiveMinutes = Field(description="The shortest window sold")
    max_duration_minutes: PositiveMinutes = Field(
        description="The longest window sold; at least min_duration_minutes"
    )
    granularity_minutes: Granularity = Field(
        description="Starts lie on this grid, counted from local midnight; it divides a day"
    )
    buffer_before_minutes: Minutes = Field(0, description="Kept clear before each booking")
    buffer_after_minutes: Minutes = Field(0, description="Kept clear after each booking (turnover)")
    lead_time_minutes: Minutes = Field(
        0, description="How long before its start a window can still be booked"
    )
    price_period_minutes: Minutes = Field(
        0,
        description="The resource's price is for this much of a window, every started"
        " period counting whole (60: per hour); 0: per booking",
    )


class ResourceCreate(models.ResourceCreate):
    kind: ResourceKind = Field(
        "slotted",
        description="slotted: sold in slots with a capacity; windowed: units sold for any"
        " window its `window_rules` allow",
    )
    window_rules: WindowRules | None = Field(
        None, description="Required for a windowed resource; a slotted one takes none"
    )


class Unit(models.Strict):
    id: uuid.UUID
    resource_id: uuid.UUID
    name: str
    size: int = Field(description="Seats, beds, or 1: the largest party it takes")
    active: bool = Field(description="False once retired: it takes no new holds")
    created_at: datetime


UnitName = Annotated[str, Field(min_length=1, max_length=200, pattern=_UNIT_NAME, examples=["T4"])]
UnitSize = Annotated[int, Field(ge=1, le=MAX_UNIT_SIZE), BeforeValidator(_a_number)]


class UnitCreate(models.Strict):
    name: UnitName = Field(description="Unique within the resource; trimmed")
    size: UnitSize


class UnitUpdate(models.Strict):
    name: UnitName | None = Field(None, description="Absent: unchanged")
    size: UnitSize | None = Field(None, description="Absent: unchanged")


class OpeningRange(models.Strict):
    opens: str = Field(pattern=TIME_OF_DAY, examples=["18:00"])
    closes: str = Field(
        pattern=TIME_OF_DAY,
        examples=["23:00"],
        description="Not after `opens`: past midnight (00:00 to 00:00 is the whole day)",
    )


Ranges = Annotated[
    list[OpeningRange],
    Field(max_length=MAX_RANGES_PER_DAY, description="Not overlapping one another"),
]


class WeeklyHours(models.Strict):
    weekday: Weekday
    ranges: Ranges


class HoursException(models.Strict):
    date: str = Field(pattern=DATE)
    ranges: Ranges = Field(description="Empty: closed that day")


class OpeningHours(models.Strict):
    weekly: list[WeeklyHours] = Field(description="A weekday absent is closed")
    exceptions: list[HoursException]


class WeeklyHoursSet(models.Strict):
    weekly: list[WeeklyHours] = Field(
        max_length=7, description="Each weekday at most once; a weekday left out is closed"
    )


class HoursExceptionSet(models.Strict):
    ranges: Ranges = Field(description="That date's own hours; empty: closed that day")


class WindowSetup(models.Strict):
    resource: models.Resource
    rules: WindowRules
    units: list[Unit] = Field(description="Best first: the smallest, then by name; retired too")
    hours: OpeningHours
