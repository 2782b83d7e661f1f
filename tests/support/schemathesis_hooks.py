"""Schemathesis hooks for the gateway's fuzz test (loaded by the CLI through
its `hooks` setting): schemathesis's positive_data_acceptance check, minus
the requests that are refused for a rule the OpenAPI document states in
words because JSON Schema cannot say it. Each exception is narrow: it needs
both the request to break the rule and the answer to name exactly that rule.

- a cursor (`query.cursor`) is the service's own signed token: a schema can
  give its alphabet and length, not which strings were issued (400);
- a `Last-Event-ID` is two numbers of at most 2^64 - 1: the pattern bounds
  the digits (20), not the value (400);
- an availability window has `start < end` at most 62 days apart, and each
  slot to create `start < end` with no `[start, end)` twice in one request:
  relations between fields (422);
- a checkout URL must parse (a port of at most 65535, a valid IPv6 address
  in brackets): the pattern bounds its characters, not their values (422);
- a time is within years 1 to 9999 once in UTC (0001-01-01T01:00:00+02:00
  is not): `date-time` bounds its form, not its value (422);
- a window hold's window has `start_time < end_time` at most 366 days apart:
  a relation between fields (422);
- a hold's `ttl_seconds` is within the range the booking service's settings
  set, which the answer states: the gateway has no range of its own (422);
- a windowed resource's rules: min_duration_minutes <= max_duration_minutes,
  `window_rules` given exactly for a windowed resource; its hours: one
  day's ranges do not overlap, each weekday once, and an exception's date
  exists (2030-02-30 fits the pattern): relations and calendars (422);
- window availability's dates are within 1971-01-01 and 2105-12-31, the
  last not before the first and at most 62 days on, and its `duration`
  within the resource's own rules, which the answer states (422).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance

from holdfast.platform.stripe_limits import url_problem

MAX_WINDOW = timedelta(days=62)
# A window hold's longest window (services/booking/limits.py MAX_WINDOW).
MAX_HOLD_WINDOW = timedelta(days=366)
UINT64_MAX = 2**64 - 1


def _time(value: object) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _out_of_range_in_utc(value: object) -> bool:
    parsed = _time(value)
    if parsed is None:
        return False
    try:
        parsed.astimezone(UTC)
    except OverflowError:
        return True
    return False


# The fields a time is refused in: a window's ends, a new slot's.
_QUERY_TIME = re.compile(r"^query\.(start|end)$")
_SLOT_TIME = re.compile(r"^slots\.(\d+)\.(start|end)$")


def _time_out_of_range(field: str, case: Any) -> bool:
    if match := _QUERY_TIME.match(field):
        return _out_of_range_in_utc((case.query or {}).get(match.group(1)))
    if match := _SLOT_TIME.match(field):
        slots = case.body.get("slots") if isinstance(case.body, dict) else None
        index = int(match.group(1))
        if not isinstance(slots, list) or index >= len(slots) or not isinstance(slots[index], dict):
            return False
        return _out_of_range_in_utc(slots[index].get(match.group(2)))
    return False


def _fields(response: Any) -> list[str]:
    try:
        body = response.json()
    except ValueError:
        return []
    if not isinstance(body, dict):  # an event stream's events
        return []
    return [str(error.get("field")) for error in body.get("errors", [])]


# How the booking service states its hold TTL range (services/booking/limits.py).
_TTL_RANGE = re.compile(r"^must be between (\d+)s and (\d+)s$")


def _ttl_outside_the_stated_range(response: Any, sent: dict[str, Any]) -> bool:
    body = response.json()
    [error] = [e for e in body["errors"] if e.get("field") == "ttl_seconds"]
    match = _TTL_RANGE.match(str(error.get("detail")))
    ttl = sent.get("ttl_seconds")
    if match is None or isinstance(ttl, bool) or not isinstance(ttl, int | float):
        return False
    return not int(match.group(1)) <= ttl <= int(match.group(2))


def _a_stream_position(value: str) -> bool:
    """Two numbers of at most 2^64 - 1: what the stream's ids are. (Values
    schemathesis takes from other answers along inferred links, such as a
    lone "0", are sent as valid although the header's pattern forbids them.)"""
    parts = value.split("-")
    return len(parts) == 2 and all(p.isdigit() and int(p) <= UINT64_MAX for p in parts)


def _breaks_a_window_rule(start: object, end: object, max_length: timedelta | None) -> bool:
    begins, ends = _time(start), _time(end)
    if begins is None or ends is None:
        return False
    return ends <= begins or (max_length is not None and ends - begins > max_length)


def refused_for_a_rule_no_schema_states(response: Any, case: Any) -> bool:
    fields = _fields(response)
    if not fields:
        return False
    status = response.status_code
    if status == 422 and all(_time_out_of_range(field, case) for field in fields):
        return True
    if status == 400 and fields == ["query.cursor"]:
        return bool((case.query or {}).get("cursor"))
    if status == 400 and fields == ["header.last-event-id"]:
        return not _a_stream_position(str((case.headers or {}).get("Last-Event-ID", "")))
    if status == 422 and case.operation.path == "/v1/holds" and set(fields) <= _HOLD_SHAPE:
        body = case.body if isinstance(case.body, dict) else {}
        return all(_hold_rule_broken(field, body, response) for field in fields)
    if status == 422 and fields == ["time_range"]:
        query = case.query or {}
        return _breaks_a_window_rule(query.get("start"), query.get("end"), MAX_WINDOW)
    if status == 422 and "/window-availability" in case.operation.path:
        return all(_window_date_rule_broken(field, case.query or {}) for field in fields)
    if status == 422 and set(fields) <= {"success_url", "cancel_url"}:
        body = case.body if isinstance(case.body, dict) else {}
        return all(url_problem(str(body.get(f))) == "must be a valid URL" for f in fields)
    if status == 422 and _window_setup_rules_broken(response, case):
        return True
    if status == 422 and case.operation.path.endswith("/slots"):
        slots = case.body.get("slots") if isinstance(case.body, dict) else None
        if not isinstance(slots, list) or not all(isinstance(s, dict) for s in slots):
            return False
        return all(_slot_rule_broken(field, slots) for field in fields)
    return False


def _window_date_rule_broken(field: str, query: dict[str, Any]) -> bool:
    if field == "duration":  # the resource's own range, stated in the answer
        return "duration" in query
    try:
        first = date.fromisoformat(str(query.get("first_date")))
        last = date.fromisoformat(str(query.get("last_date")))
    except ValueError:
        return False
    outside = {d for d in (first, last) if not date(1971, 1, 1) <= d <= date(2105, 12, 31)}
    if field == "first_date":
        return first in outside
    if field == "last_date":
        return last in outside or last < first or (last - first).days >= MAX_WINDOW.days
    return False


# A hold's two shapes (gateway/models.py HoldCreate): slot_ids and quantity,
# or a window with party_size and/or unit_id.
_SLOTS_SHAPE = ("slot_ids", "quantity")
_WINDOW_SHAPE = ("window", "party_size", "unit_id")
_HOLD_SHAPE = {*_SLOTS_SHAPE, *_WINDOW_SHAPE, "ttl_seconds"}


def _given(body: dict[str, Any], field: str) -> bool:
    return body.get(field) not in (None, [], 0, "")


def _hold_rule_broken(field: str, body: dict[str, Any], response: Any) -> bool:
    if field == "ttl_seconds":
        return _ttl_outside_the_stated_range(response, body)
    windowed = any(_given(body, f) for f in _WINDOW_SHAPE)
    if windowed and any(_given(body, f) for f in _SLOTS_SHAPE):
        return True  # both shapes at once
    if not windowed:
        return not all(_given(body, f) for f in _SLOTS_SHAPE)
    if not _given(body, "window") or not (_given(body, "party_size") or _given(body, "unit_id")):
        return True
    window = body["window"] if isinstance(body["window"], dict) else {}
    return field == "window" and _breaks_a_window_rule(
        window.get("start_time"), window.get("end_time"), MAX_HOLD_WINDOW
    )


def _slot_rule_broken(field: str, slots: list[dict[str, Any]]) -> bool:
    if field == "slots":  # the same [start, end) twice
        ranges = [(_time(s.get("start")), _time(s.get("end"))) for s in slots]
        return len(set(ranges)) < len(ranges)
    if field.startswith("slots[") and field.endswith("].time_range"):
        index = int(field[len("slots[") : -len("].time_range")])
        slot = slots[index] if index < len(slots) else {}
        return _breaks_a_window_rule(slot.get("start"), slot.get("end"), None)
    return False


@schemathesis.check
def positive_data_accepted_unless_a_stated_rule_refuses_it(
    ctx: Any, response: Any, case: Any
) -> bool | None:
    if refused_for_a_rule_no_schema_states(response, case):
        return None
    result: bool | None = positive_data_acceptance(ctx, response, case)
    return result


_RANGE_FIELD = re.compile(r"^(?:weekly\[(\d+)\]\.)?ranges\[(\d+)\]$")
_OVERLAPS = re.compile(r"^overlaps ranges\[(\d+)\]$")


def _minutes_of(day_range: Any) -> tuple[int, int]:
    opens = int(day_range["opens"][:2]) * 60 + int(day_range["opens"][3:])
    closes = int(day_range["closes"][:2]) * 60 + int(day_range["closes"][3:])
    return opens, closes if closes > opens else closes + 24 * 60


def _window_setup_rule_broken(field: str, detail: str, case: Any) -> bool:
    body = case.body if isinstance(case.body, dict) else {}
    rules = body.get("window_rules") if "window_rules" in body else body
    if field.endswith("max_duration_minutes") and isinstance(rules, dict):
        return bool(rules["max_duration_minutes"] < rules["min_duration_minutes"])
    if field == "window_rules":
        return (body.get("kind") == "windowed") != (body.get("window_rules") is not None)
    if field == "path.date":
        try:
            date.fromisoformat(str((case.path_parameters or {}).get("date")))
        except ValueError:
            return True
        return False
    if (match := re.match(r"^weekly\[(\d+)\]\.weekday$", field)) is not None:
        days = [d["weekday"] for d in body["weekly"]]
        return days.index(days[int(match.group(1))]) < int(match.group(1))
    found, overlaps = _RANGE_FIELD.match(field), _OVERLAPS.match(detail)
    if found is None or overlaps is None:
        return False
    day = body["weekly"][int(found.group(1))] if found.group(1) else body
    ranges = [_minutes_of(r) for r in day["ranges"]]
    (start, end), (other_start, other_end) = (
        ranges[int(found.group(2))],
        ranges[int(overlaps.group(1))],
    )
    return start < other_end and other_start < end


def _window_setup_rules_broken(response: Any, case: Any) -> bool:
    """Every field named breaks one of the windowed setup's rules no schema states."""
    errors = response.json().get("errors", [])
    try:
        return bool(errors) and all(
            _window_setup_rule_broken(str(e.get("field")), str(e.get("detail")), case)
            for e in errors
        )
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        return False  # a body not of the shape the rule reads: not this rule's refusal
