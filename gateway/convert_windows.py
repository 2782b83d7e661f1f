"""Windowed resources' JSON <-> the booking service's protobuf: rules in
whole minutes, units, opening hours; and the names a service's field
violation gets over HTTP (`rules.min_duration` is `min_duration_minutes`)."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from datetime import UTC, timedelta
from typing import TypeVar

import grpc
from google.protobuf.duration_pb2 import Duration

from gateway import convert
from gateway import window_models as wm
from gateway.problems import from_grpc
from holdfast.contracts.booking.v1 import inventory_pb2

_DURATIONS = (
    "min_duration",
    "max_duration",
    "granularity",
    "buffer_before",
    "buffer_after",
    "lead_time",
    "price_period",
)


def _minutes(count: int) -> Duration:
    span = Duration()
    span.FromTimedelta(timedelta(minutes=count))
    return span


def rules_message(rules: wm.WindowRules) -> inventory_pb2.WindowRules:
    return inventory_pb2.WindowRules(
        **{name: _minutes(getattr(rules, f"{name}_minutes")) for name in _DURATIONS}
    )


def rules(message: inventory_pb2.WindowRules) -> wm.WindowRules:
    return wm.WindowRules.model_validate(
        {f"{name}_minutes": getattr(message, name).seconds // 60 for name in _DURATIONS}
    )


_NONE: Mapping[str, str] = {}
T = TypeVar("T")


def http_field(field: str, renames: Mapping[str, str]) -> str:
    """A service's field name as the caller sent it: the first of `renames`
    that is the field or its parent is replaced (by "" when the body stands
    for that request field, "path.date" for a path parameter...), and a
    rule's duration gains its unit."""
    for prefix, into in renames.items():
        if field == prefix or field.startswith(prefix + "."):
            rest = field[len(prefix) :].lstrip(".")
            field = ".".join(part for part in (into, rest) if part) or "body"
            break
    head, _, leaf = field.rpartition(".")
    if leaf in _DURATIONS and (not head or head.endswith("rules")):
        return f"{head}.{leaf}_minutes" if head else f"{leaf}_minutes"
    return field


async def named_as_sent(call: Awaitable[T], renames: Mapping[str, str] = _NONE) -> T:
    """`call`'s answer; an INVALID_ARGUMENT's fields named as the caller sent
    them (see http_field). Every other failure goes on as it came."""
    try:
        return await call
    except grpc.aio.AioRpcError as error:
        if error.code() is not grpc.StatusCode.INVALID_ARGUMENT:
            raise
        problem = from_grpc(error)
        for item in problem.errors:
            item["field"] = http_field(item["field"], renames)
        raise problem from None


def _weekday(value: inventory_pb2.Weekday.ValueType) -> wm.Weekday:
    return wm.WEEKDAYS[value - inventory_pb2.WEEKDAY_MONDAY]


def weekday_message(day: wm.Weekday) -> inventory_pb2.Weekday.ValueType:
    return inventory_pb2.Weekday.ValueType(inventory_pb2.WEEKDAY_MONDAY + wm.WEEKDAYS.index(day))


def ranges_message(ranges: Sequence[wm.OpeningRange]) -> list[inventory_pb2.OpeningRange]:
    return [inventory_pb2.OpeningRange(opens=r.opens, closes=r.closes) for r in ranges]


def _ranges(ranges: Sequence[inventory_pb2.OpeningRange]) -> list[dict[str, str]]:
    return [{"opens": r.opens, "closes": r.closes} for r in ranges]


def hours(message: inventory_pb2.OpeningHours) -> wm.OpeningHours:
    return wm.OpeningHours.model_validate(
        {
            "weekly": [
                {"weekday": _weekday(w.weekday), "ranges": _ranges(w.ranges)}
                for w in message.weekly
            ],
            "exceptions": [
                {"date": e.date, "ranges": _ranges(e.ranges)} for e in message.exceptions
            ],
        }
    )


def unit(message: inventory_pb2.Unit) -> wm.Unit:
    return wm.Unit.model_validate(
        {
            "id": message.unit_id,
            "resource_id": message.resource_id,
            "name": message.name,
            "size": message.size,
            "active": message.active,
            "created_at": message.create_time.ToDatetime(UTC),
        }
    )


def setup(message: inventory_pb2.GetWindowSetupResponse) -> wm.WindowSetup:
    return wm.WindowSetup(
        resource=convert.resource(message.resource),
        rules=rules(message.rules),
        units=[unit(u) for u in message.units],
        hours=hours(message.hours),
    )
