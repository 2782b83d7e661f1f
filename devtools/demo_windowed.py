"""The demo tenant's windowed resources: a restaurant, a small hotel and a bike
rental, each sold by unit for any window its rules and hours allow.

Made through the gRPC InventoryService like any client would, and safe to run
again: a resource that exists (by name) is completed, not made twice; units
are added only when missing (by name); weekly hours are replaced by the same
hours. Rules of a resource that already exists are left as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeAlias

from google.protobuf.duration_pb2 import Duration

from holdfast.contracts.booking.v1 import inventory_pb2
from holdfast.contracts.common.v1 import money_pb2

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
WHOLE_DAY = ("00:00", "00:00")
Weekday: TypeAlias = inventory_pb2.Weekday.ValueType
TUESDAY_TO_SUNDAY: tuple[Weekday, ...] = (
    inventory_pb2.WEEKDAY_TUESDAY,
    inventory_pb2.WEEKDAY_WEDNESDAY,
    inventory_pb2.WEEKDAY_THURSDAY,
    inventory_pb2.WEEKDAY_FRIDAY,
    inventory_pb2.WEEKDAY_SATURDAY,
    inventory_pb2.WEEKDAY_SUNDAY,
)
EVERY_DAY: tuple[Weekday, ...] = (inventory_pb2.WEEKDAY_MONDAY, *TUESDAY_TO_SUNDAY)


@dataclass(frozen=True)
class Rules:
    min_duration: timedelta
    max_duration: timedelta
    granularity: timedelta
    buffer_after: timedelta = timedelta(0)
    lead_time: timedelta = timedelta(0)
    # Zero: the price is per booking; else per started period of the window.
    price_period: timedelta = timedelta(0)


@dataclass(frozen=True)
class WindowedDemo:
    name: str
    price_minor: int
    rules: Rules
    # (name, size): seats, guests or 1.
    units: tuple[tuple[str, int], ...]
    # The weekdays open, each with these ranges ("HH:MM", local time).
    weekdays: tuple[Weekday, ...]
    ranges: tuple[tuple[str, str], ...]


# Two-hour seatings on the quarter hour, a quarter of an hour to turn a table
# over, bookable until 30 minutes before; lunch and dinner Tuesday to Sunday,
# closed on Mondays. A 10 EUR deposit per booking, whatever the party.
RESTAURANT = WindowedDemo(
    name="Harbour bistro",
    price_minor=1000,
    rules=Rules(
        min_duration=2 * HOUR,
        max_duration=2 * HOUR,
        granularity=15 * MINUTE,
        buffer_after=15 * MINUTE,
        lead_time=30 * MINUTE,
    ),
    units=(("T2a", 2), ("T2b", 2), ("T4a", 4), ("T4b", 4), ("T6", 6)),
    weekdays=TUESDAY_TO_SUNDAY,
    ranges=(("12:00", "15:00"), ("18:00", "23:00")),
)

# Open all day, every day, so a stay runs through the nights. Check-in on any
# hour; the usual stay is 15:00 to 11:00, and housekeeping keeps a room free
# for 4 hours after each check-out, so the next guest can check in at 15:00.
# One night at least: a 15:00-11:00 night lasts 20 hours, or 19 across the
# spring-forward night, hence the 19-hour minimum; at most 14 nights. Priced
# per started day, so a stay of n nights (24n - 4 hours) costs n nights.
HOTEL = WindowedDemo(
    name="Alfama guesthouse",
    price_minor=9500,
    rules=Rules(
        min_duration=19 * HOUR,
        max_duration=14 * DAY,
        granularity=HOUR,
        buffer_after=4 * HOUR,
        lead_time=HOUR,
        price_period=DAY,
    ),
    units=(("Room 1", 2), ("Room 2", 2), ("Room 3", 3), ("Family room", 4)),
    weekdays=EVERY_DAY,
    ranges=(WHOLE_DAY,),
)

# One bike per booking (size 1), from one to eight hours on the half hour,
# within opening hours; priced per started hour.
BIKES = WindowedDemo(
    name="City bike rental",
    price_minor=800,
    rules=Rules(
        min_duration=HOUR,
        max_duration=8 * HOUR,
        granularity=30 * MINUTE,
        lead_time=15 * MINUTE,
        price_period=HOUR,
    ),
    units=tuple((f"Bike {n}", 1) for n in range(1, 7)),
    weekdays=EVERY_DAY,
    ranges=(("09:00", "19:00"),),
)

WINDOWED_DEMOS = (RESTAURANT, HOTEL, BIKES)


def _duration(span: timedelta) -> Duration:
    duration = Duration()
    duration.FromTimedelta(span)
    return duration


def _rules_message(rules: Rules) -> inventory_pb2.WindowRules:
    return inventory_pb2.WindowRules(
        min_duration=_duration(rules.min_duration),
        max_duration=_duration(rules.max_duration),
        granularity=_duration(rules.granularity),
        buffer_after=_duration(rules.buffer_after),
        lead_time=_duration(rules.lead_time),
        price_period=_duration(rules.price_period),
    )


def ensure_windowed(
    inventory: Any, demo: WindowedDemo, existing_id: str | None, zone: str, call: dict[str, Any]
) -> bool:
    """Makes `demo` (unless `existing_id` names it already), adds the units it
    lacks and sets its weekly hours; True if it made the resource or a unit."""
    made = existing_id is None
    key = "demo-seed-" + demo.name.lower().replace(" ", "-")
    if existing_id is None:
        existing_id = inventory.CreateResource(
            inventory_pb2.CreateResourceRequest(
                name=demo.name,
                time_zone=zone,
                price=money_pb2.Money(currency_code="EUR", amount_minor=demo.price_minor),
                request_id=key,
                kind=inventory_pb2.RESOURCE_KIND_WINDOWED,
                window_rules=_rules_message(demo.rules),
            ),
            **call,
        ).resource.resource_id
    setup = inventory.GetWindowSetup(
        inventory_pb2.GetWindowSetupRequest(resource_id=existing_id), **call
    )
    have = {unit.name for unit in setup.units}
    for name, size in demo.units:
        if name not in have:
            inventory.CreateUnit(
                inventory_pb2.CreateUnitRequest(
                    resource_id=existing_id,
                    name=name,
                    size=size,
                    request_id=f"{key}-unit-{name.lower().replace(' ', '-')}",
                ),
                **call,
            )
            made = True
    ranges = [inventory_pb2.OpeningRange(opens=o, closes=c) for o, c in demo.ranges]
    inventory.SetWeeklyHours(
        inventory_pb2.SetWeeklyHoursRequest(
            resource_id=existing_id,
            weekly=[inventory_pb2.WeeklyHours(weekday=day, ranges=ranges) for day in demo.weekdays],
        ),
        **call,
    )
    return made
