"""Setting up windowed resources over real gRPC, what is refused: every bad
field is named and nothing is written; another tenant's ids are NOT_FOUND;
a slotted resource is RESOURCE_NOT_WINDOWED and a windowed one takes no
slots. (What is accepted is in test_window_setup.py.)"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from holdfast.contracts.booking.v1 import inventory_pb2 as pb
from holdfast.contracts.common.v1 import money_pb2
from tests.support.booking import BookingClient, error_of
from tests.support.window_setup import SetupClient, day, minutes, opening, rules

MON, TUE, SAT, SUN = pb.WEEKDAY_MONDAY, pb.WEEKDAY_TUESDAY, pb.WEEKDAY_SATURDAY, pb.WEEKDAY_SUNDAY


@pytest.fixture
def setup(client: BookingClient) -> SetupClient:
    return SetupClient(client)


# --- refusals -----------------------------------------------------------------

Call = Callable[[BookingClient, str, str], Awaitable[Any]]


def _money() -> money_pb2.Money:
    return money_pb2.Money(currency_code="EUR", amount_minor=100)


def _with(base: pb.WindowRules, **spans: Duration) -> pb.WindowRules:
    changed = pb.WindowRules()
    changed.CopyFrom(base)
    for name, span in spans.items():
        getattr(changed, name).CopyFrom(span)
    return changed


def _seconds(seconds: int, nanos: int = 0) -> Duration:
    return Duration(seconds=seconds, nanos=nanos)


def set_rules(window_rules: pb.WindowRules) -> Call:
    return lambda c, rid, uid: c.inventory.SetWindowRules(
        pb.SetWindowRulesRequest(resource_id=rid, rules=window_rules), metadata=c.md
    )


def weekly(*days: pb.WeeklyHours) -> Call:
    return lambda c, rid, uid: c.inventory.SetWeeklyHours(
        pb.SetWeeklyHoursRequest(resource_id=rid, weekly=days), metadata=c.md
    )


def exception(date: str, *ranges: str) -> Call:
    return lambda c, rid, uid: c.inventory.SetHoursException(
        pb.SetHoursExceptionRequest(
            resource_id=rid, exception=pb.HoursException(date=date, ranges=opening(*ranges))
        ),
        metadata=c.md,
    )


def new_unit(name: str, size: int) -> Call:
    return lambda c, rid, uid: c.inventory.CreateUnit(
        pb.CreateUnitRequest(resource_id=rid, name=name, size=size), metadata=c.md
    )


BAD: dict[str, tuple[Call, list[str]]] = {
    "windowed-without-rules": (
        lambda c, rid, uid: c.inventory.CreateResource(
            pb.CreateResourceRequest(
                name="X", time_zone="UTC", price=_money(), kind=pb.RESOURCE_KIND_WINDOWED
            ),
            metadata=c.md,
        ),
        ["window_rules"],
    ),
    "slotted-with-rules": (
        lambda c, rid, uid: c.inventory.CreateResource(
            pb.CreateResourceRequest(
                name="X",
                time_zone="UTC",
                price=_money(),
                kind=pb.RESOURCE_KIND_SLOTTED,
                window_rules=rules(),
            ),
            metadata=c.md,
        ),
        ["window_rules"],
    ),
    "unknown-kind": (
        lambda c, rid, uid: c.inventory.CreateResource(
            pb.CreateResourceRequest(name="X", time_zone="UTC", price=_money(), kind=9),  # type: ignore[arg-type]
            metadata=c.md,
        ),
        ["kind"],
    ),
    "create-with-bad-rules": (
        lambda c, rid, uid: c.inventory.CreateResource(
            pb.CreateResourceRequest(
                name="X",
                time_zone="UTC",
                price=_money(),
                kind=pb.RESOURCE_KIND_WINDOWED,
                window_rules=_with(rules(), granularity=minutes(7)),
            ),
            metadata=c.md,
        ),
        ["window_rules.granularity"],
    ),
    "rules-missing": (
        lambda c, rid, uid: c.inventory.SetWindowRules(
            pb.SetWindowRulesRequest(resource_id=rid), metadata=c.md
        ),
        ["rules"],
    ),
    "rules-empty": (
        set_rules(pb.WindowRules()),
        ["rules.min_duration", "rules.max_duration", "rules.granularity"],
    ),
    "rules-not-whole-minutes": (
        set_rules(
            _with(
                rules(),
                min_duration=_seconds(90),
                buffer_after=_seconds(60, 5),
                lead_time=_seconds(30),
                price_period=_seconds(59),
            )
        ),
        ["rules.min_duration", "rules.buffer_after", "rules.lead_time", "rules.price_period"],
    ),
    "rules-negative": (
        set_rules(
            _with(
                rules(),
                buffer_before=_seconds(-60),
                lead_time=_seconds(-60),
                price_period=_seconds(-60),
            )
        ),
        ["rules.buffer_before", "rules.lead_time", "rules.price_period"],
    ),
    "rules-min-above-max": (
        set_rules(_with(rules(), min_duration=minutes(120), max_duration=minutes(60))),
        ["rules.max_duration"],
    ),
    "rules-grid-not-dividing-a-day": (
        set_rules(_with(rules(), granularity=minutes(7))),
        ["rules.granularity"],
    ),
    "rules-too-long": (
        set_rules(_with(rules(), max_duration=_seconds(315_576_000_000))),
        ["rules.max_duration"],
    ),
    "bad-resource-id": (set_rules(rules()), ["resource_id"]),
    "hours-bad-times": (
        weekly(day(MON, "12:00-15:60", "9:00-10:00", "24:00-01:00")),
        [
            "weekly[0].ranges[0].closes",
            "weekly[0].ranges[1].opens",
            "weekly[0].ranges[2].opens",
        ],
    ),
    "hours-no-weekday": (
        weekly(day(MON, "12:00-15:00"), day(0, "12:00-15:00")),
        ["weekly[1].weekday"],
    ),
    "hours-weekday-twice": (
        weekly(day(MON, "12:00-15:00"), day(MON, "18:00-22:00")),
        ["weekly[1].weekday"],
    ),
    "hours-overlapping": (
        weekly(day(TUE, "18:00-01:00", "12:00-15:00", "23:00-23:30", "12:00-13:00")),
        ["weekly[0].ranges[2]", "weekly[0].ranges[3]"],
    ),
    "hours-too-many-ranges": (
        weekly(day(MON, *[f"{h:02d}:00-{h:02d}:30" for h in range(13)])),
        ["weekly[0].ranges"],
    ),
    "exception-missing": (
        lambda c, rid, uid: c.inventory.SetHoursException(
            pb.SetHoursExceptionRequest(resource_id=rid), metadata=c.md
        ),
        ["exception"],
    ),
    "exception-bad-date": (exception("2030-02-30", "12:00-13:00"), ["exception.date"]),
    "exception-not-a-date": (exception("24/12/2030"), ["exception.date"]),
    "exception-bad-range": (
        exception("2030-12-24", "12:00-12:00x", "11:00-13:00", "12:30-14:00"),
        ["exception.ranges[0].closes", "exception.ranges[2]"],
    ),
    "clear-bad-date": (
        lambda c, rid, uid: c.inventory.ClearHoursException(
            pb.ClearHoursExceptionRequest(resource_id=rid, date="2030-1-1"), metadata=c.md
        ),
        ["date"],
    ),
    "unit-blank": (new_unit("  ", 2), ["name"]),
    "unit-control-character": (new_unit("T\n4", 0), ["name", "size"]),
    "unit-nul": (new_unit("T\x004", 1001), ["name", "size"]),
    "unit-too-long": (new_unit("T" * 201, -1), ["name", "size"]),
    "update-unit-bad": (
        lambda c, rid, uid: c.inventory.UpdateUnit(
            pb.UpdateUnitRequest(unit_id=uid, name="", size=0), metadata=c.md
        ),
        ["name", "size"],
    ),
    "update-unit-bad-id": (
        lambda c, rid, uid: c.inventory.UpdateUnit(
            pb.UpdateUnitRequest(unit_id="T4", size=2), metadata=c.md
        ),
        ["unit_id"],
    ),
    "retire-bad-id": (
        lambda c, rid, uid: c.inventory.RetireUnit(pb.RetireUnitRequest(unit_id=""), metadata=c.md),
        ["unit_id"],
    ),
}


async def _state(db: asyncpg.Pool, tenant: str) -> list[Any]:
    """Everything a setup change could write for the tenant (of the outbox,
    which rows: the relay marks them published as it goes)."""
    tables = {
        "resources": "*",
        "resource_window_rules": "*",
        "resource_units": "*",
        "resource_hours": "*",
        "resource_hour_exceptions": "*",
        "audit_log": "*",
        "outbox": "id, dedupe_key, payload",
    }
    return [
        [
            tuple(r)
            for r in await db.fetch(
                f"SELECT {columns} FROM {table} WHERE tenant_id = $1 ORDER BY 1", tenant
            )
        ]
        for table, columns in tables.items()
    ]


@pytest.mark.parametrize("case", list(BAD))
async def test_bad_input_names_every_field_and_writes_nothing(
    setup: SetupClient, client: BookingClient, db: asyncpg.Pool, tenant: str, case: str
) -> None:
    resource = await setup.restaurant()
    unit = await setup.unit(resource.resource_id, "T4", 4)
    call, fields = BAD[case]
    rid = "not-a-uuid" if case == "bad-resource-id" else resource.resource_id
    before = await _state(db, tenant)

    error = await error_of(call(client, rid, unit.unit_id))

    assert error.code == grpc.StatusCode.INVALID_ARGUMENT, error
    assert [f for f, _ in error.field_violations] == fields, error.field_violations
    assert await _state(db, tenant) == before


def _every_call(rid: str, uid: str) -> dict[str, Call]:
    return {
        "SetWindowRules": set_rules(rules()),
        "GetWindowSetup": lambda c, r, u: c.inventory.GetWindowSetup(
            pb.GetWindowSetupRequest(resource_id=r), metadata=c.md
        ),
        "CreateUnit": new_unit("T9", 2),
        "UpdateUnit": lambda c, r, u: c.inventory.UpdateUnit(
            pb.UpdateUnitRequest(unit_id=u, size=3), metadata=c.md
        ),
        "RetireUnit": lambda c, r, u: c.inventory.RetireUnit(
            pb.RetireUnitRequest(unit_id=u), metadata=c.md
        ),
        "RestoreUnit": lambda c, r, u: c.inventory.RestoreUnit(
            pb.RestoreUnitRequest(unit_id=u), metadata=c.md
        ),
        "SetWeeklyHours": weekly(day(MON, "12:00-15:00")),
        "SetHoursException": exception("2030-12-24"),
        "ClearHoursException": lambda c, r, u: c.inventory.ClearHoursException(
            pb.ClearHoursExceptionRequest(resource_id=r, date="2030-12-24"), metadata=c.md
        ),
    }


async def test_another_tenants_resource_or_unit_is_not_found_and_untouched(
    setup: SetupClient, channel: grpc.aio.Channel, db: asyncpg.Pool, tenant: str
) -> None:
    resource = await setup.restaurant()
    unit = await setup.unit(resource.resource_id, "T4", 4)
    intruder = BookingClient.on(channel, f"t-{uuid.uuid4().hex[:12]}")
    before = await _state(db, tenant)

    answers = {
        name: await error_of(call(intruder, resource.resource_id, unit.unit_id))
        for name, call in _every_call(resource.resource_id, unit.unit_id).items()
    }
    unknown = await error_of(
        _every_call("", "")["UpdateUnit"](setup.client, resource.resource_id, str(uuid.uuid4()))
    )

    wrong = {
        name: (e.code, e.reason)
        for name, e in answers.items()
        if e.code != grpc.StatusCode.NOT_FOUND
        or e.reason not in ("RESOURCE_NOT_FOUND", "UNIT_NOT_FOUND")
    }
    assert not wrong, wrong
    assert (unknown.code, unknown.reason) == (grpc.StatusCode.NOT_FOUND, "UNIT_NOT_FOUND")
    assert await _state(db, tenant) == before


async def test_a_slotted_resource_takes_no_units_or_hours(
    client: BookingClient, db: asyncpg.Pool, tenant: str
) -> None:
    resource, _ = await client.resource_with_slots()
    calls = _every_call(resource.resource_id, "")
    windowed_only = [
        "GetWindowSetup",
        "CreateUnit",
        "SetWeeklyHours",
        "SetHoursException",
        "ClearHoursException",
    ]
    before = await _state(db, tenant)

    answers = {
        name: await error_of(calls[name](client, resource.resource_id, ""))
        for name in windowed_only
    }

    assert {n: (e.code, e.reason) for n, e in answers.items()} == {
        n: (grpc.StatusCode.FAILED_PRECONDITION, "RESOURCE_NOT_WINDOWED") for n in windowed_only
    }
    assert await _state(db, tenant) == before


async def test_a_windowed_resource_takes_no_slots(
    setup: SetupClient, client: BookingClient, db: asyncpg.Pool, tenant: str
) -> None:
    resource = await setup.restaurant()
    before = await _state(db, tenant)

    error = await error_of(client.slots(resource.resource_id))

    assert (error.code, error.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "RESOURCE_NOT_SLOTTED",
    )
    assert await _state(db, tenant) == before
