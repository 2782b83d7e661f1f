"""`holdfast units`, `holdfast hours` and `holdfast setup`: a windowed
resource's units, opening hours and whole setup, through the booking
service. (`holdfast resources create --windowed` makes one.)"""

from __future__ import annotations

import argparse
import re
from typing import Any

from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message

from holdfast.cli.rpc import CommandTree, Stubs
from holdfast.contracts.booking.v1 import inventory_pb2

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^(\d\d:\d\d)-(\d\d:\d\d)$")


def minutes(count: int) -> Duration:
    span = Duration()
    span.FromSeconds(count * 60)
    return span


def window_rules(args: argparse.Namespace) -> inventory_pb2.WindowRules:
    """The rules `add_rule_options` read, in minutes."""
    return inventory_pb2.WindowRules(
        min_duration=minutes(args.min_minutes),
        max_duration=minutes(args.max_minutes),
        granularity=minutes(args.every_minutes),
        buffer_before=minutes(args.buffer_before),
        buffer_after=minutes(args.buffer_after),
        lead_time=minutes(args.lead_minutes),
        price_period=minutes(args.price_period),
    )


def add_rule_options(parser: argparse.ArgumentParser, *, required: bool) -> None:
    """The window rules as options, all in minutes."""
    parser.add_argument("--min-minutes", type=int, required=required, help="shortest window")
    parser.add_argument("--max-minutes", type=int, required=required, help="longest window")
    parser.add_argument(
        "--every-minutes", type=int, default=15, help="start grid from midnight (default 15)"
    )
    parser.add_argument("--buffer-before", type=int, default=0, metavar="MINUTES")
    parser.add_argument("--buffer-after", type=int, default=0, metavar="MINUTES")
    parser.add_argument("--lead-minutes", type=int, default=0, help="book at least this early")
    parser.add_argument(
        "--price-period",
        type=int,
        default=0,
        metavar="MINUTES",
        help="price per started period of a window (60: hourly); 0: per booking",
    )


def ranges(text: str) -> list[inventory_pb2.OpeningRange]:
    """ "12:00-15:00,18:00-23:00" (empty: none)."""
    found = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = _RANGE.match(part)
        if match is None:
            raise argparse.ArgumentTypeError(f"{part!r} is not HH:MM-HH:MM")
        found.append(inventory_pb2.OpeningRange(opens=match.group(1), closes=match.group(2)))
    return found


def weekly_hours(text: str) -> inventory_pb2.WeeklyHours:
    """ "mon=12:00-15:00,18:00-23:00"."""
    name, equals, given = text.partition("=")
    if not equals or name.strip().lower() not in DAYS:
        raise argparse.ArgumentTypeError(f"{text!r} is not DAY=HH:MM-HH:MM[,...], DAY in {DAYS}")
    weekday = inventory_pb2.WEEKDAY_MONDAY + DAYS.index(name.strip().lower())
    return inventory_pb2.WeeklyHours(
        weekday=inventory_pb2.Weekday.ValueType(weekday), ranges=ranges(given)
    )


async def _setup(args: argparse.Namespace, stubs: Stubs, md: Any) -> Message:
    request = inventory_pb2.GetWindowSetupRequest(resource_id=args.resource)
    response: Message = await stubs.inventory.GetWindowSetup(request, metadata=md)
    return response


async def _rules_set(args: argparse.Namespace, stubs: Stubs, md: Any) -> Message:
    request = inventory_pb2.SetWindowRulesRequest(
        resource_id=args.resource, rules=window_rules(args)
    )
    response: Message = await stubs.inventory.SetWindowRules(request, metadata=md)
    return response


async def _units_add(args: argparse.Namespace, stubs: Stubs, md: Any) -> Message:
    request = inventory_pb2.CreateUnitRequest(
        resource_id=args.resource, name=args.name, size=args.size, request_id=args.request_id
    )
    response: Message = await stubs.inventory.CreateUnit(request, metadata=md)
    return response


def _print_units(response: Message) -> None:
    """One line a unit, best first: id, name, size, and whether retired."""
    assert isinstance(response, inventory_pb2.GetWindowSetupResponse)
    for unit in response.units:
        state = "" if unit.active else "  (retired)"
        print(f"{unit.unit_id}  {unit.name}  size {unit.size}{state}")


async def _units_change(args: argparse.Namespace, stubs: Stubs, md: Any) -> Message:
    request = inventory_pb2.UpdateUnitRequest(unit_id=args.unit)
    if args.name is not None:
        request.name = args.name
    if args.size is not None:
        request.size = args.size
    response: Message = await stubs.inventory.UpdateUnit(request, metadata=md)
    return response


async def _units_retire(args: argparse.Namespace, stubs: Stubs, md: Any) -> Message:
    request = inventory_pb2.RetireUnitRequest(unit_id=args.unit)
    response: Message = await stubs.inventory.RetireUnit(request, metadata=md)
    return response


async def _units_restore(args: argparse.Namespace, stubs: Stubs, md: Any) -> Message:
    request = inventory_pb2.RestoreUnitRequest(unit_id=args.unit)
    response: Message = await stubs.inventory.RestoreUnit(request, metadata=md)
    return response


async def _hours_set(args: argparse.Namespace, stubs: Stubs, md: Any) -> Message:
    request = inventory_pb2.SetWeeklyHoursRequest(resource_id=args.resource, weekly=args.day)
    response: Message = await stubs.inventory.SetWeeklyHours(request, metadata=md)
    return response


async def _hours_except(args: argparse.Namespace, stubs: Stubs, md: Any) -> Message:
    exception = inventory_pb2.HoursException(date=args.date, ranges=args.ranges)
    request = inventory_pb2.SetHoursExceptionRequest(resource_id=args.resource, exception=exception)
    response: Message = await stubs.inventory.SetHoursException(request, metadata=md)
    return response


async def _hours_clear(args: argparse.Namespace, stubs: Stubs, md: Any) -> Message:
    request = inventory_pb2.ClearHoursExceptionRequest(resource_id=args.resource, date=args.date)
    response: Message = await stubs.inventory.ClearHoursException(request, metadata=md)
    return response


def add_window_commands(tree: CommandTree) -> None:
    setup = tree.group("setup", "a windowed resource's rules, units and hours")
    p = tree.action(setup, "show", _setup, help_text="the rules, units and opening hours")
    p.add_argument("resource")
    p = tree.action(setup, "rules", _rules_set, help_text="replace the window rules (minutes)")
    p.add_argument("resource")
    add_rule_options(p, required=True)

    units = tree.group("units", "a windowed resource's units: tables, rooms, bikes")
    p = tree.action(units, "add", _units_add)
    p.add_argument("resource")
    p.add_argument("--name", required=True)
    p.add_argument("--size", type=int, default=1, help="seats, beds, or 1")
    p.add_argument("--request-id", default="", help="idempotency key")
    p = tree.action(units, "list", _setup, render=_print_units, help_text="retired ones too")
    p.add_argument("resource")
    p = tree.action(units, "change", _units_change, help_text="rename and/or resize")
    p.add_argument("unit")
    p.add_argument("--name")
    p.add_argument("--size", type=int)
    p = tree.action(units, "retire", _units_retire, help_text="takes no new holds")
    p.add_argument("unit")
    p = tree.action(units, "restore", _units_restore)
    p.add_argument("unit")

    hours = tree.group("hours", "a windowed resource's opening hours, local time")
    p = tree.action(
        hours, "set", _hours_set, help_text="replace the weekly hours; a day left out is closed"
    )
    p.add_argument("resource")
    p.add_argument(
        "--day",
        type=weekly_hours,
        action="append",
        default=[],
        help="e.g. mon=12:00-15:00,18:00-23:00 (repeat per day; 18:00-01:00 runs past midnight)",
    )
    p = tree.action(hours, "except", _hours_except, help_text="one date's own hours")
    p.add_argument("resource")
    p.add_argument("date", help="YYYY-MM-DD")
    p.add_argument(
        "--ranges", type=ranges, default=[], help="e.g. 19:00-02:00; none: closed that day"
    )
    p = tree.action(hours, "clear", _hours_clear, help_text="the date follows the weekly hours")
    p.add_argument("resource")
    p.add_argument("date", help="YYYY-MM-DD")
