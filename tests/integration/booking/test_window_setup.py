"""Setting up windowed resources over real gRPC: rules, units and opening
hours are written as asked and read back by GetWindowSetup; every change
writes its audit row and the resource's invalidation. (What is refused is
in test_window_setup_refusals.py.)"""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import grpc
import pytest

from holdfast.contracts.booking.v1 import inventory_pb2 as pb
from tests.support.booking import BookingClient, error_of
from tests.support.window_setup import SetupClient, day, opening, rules

MON, TUE, SAT, SUN = pb.WEEKDAY_MONDAY, pb.WEEKDAY_TUESDAY, pb.WEEKDAY_SATURDAY, pb.WEEKDAY_SUNDAY


@pytest.fixture
def setup(client: BookingClient) -> SetupClient:
    return SetupClient(client)


def as_text(hours: pb.OpeningHours) -> dict[str, list[str]]:
    """Hours as {"WEEKDAY_MONDAY": ["12:00-15:00"], "2030-12-24": []}."""
    read = {
        pb.Weekday.Name(w.weekday): [f"{r.opens}-{r.closes}" for r in w.ranges]
        for w in hours.weekly
    }
    read.update({e.date: [f"{r.opens}-{r.closes}" for r in e.ranges] for e in hours.exceptions})
    return read


async def changes(db: asyncpg.Pool, tenant: str) -> tuple[list[str], list[dict[str, Any]]]:
    """The tenant's audit actions and availability messages, oldest first."""
    audit = await db.fetch("SELECT action FROM audit_log WHERE tenant_id = $1 ORDER BY id", tenant)
    outbox = await db.fetch(
        "SELECT message_key, payload FROM outbox WHERE tenant_id = $1 AND topic = 'availability'"
        " ORDER BY id",
        tenant,
    )
    messages = [{"key": r["message_key"], **json.loads(r["payload"])} for r in outbox]
    return [r["action"] for r in audit], messages


# --- happy paths --------------------------------------------------------------


async def test_a_windowed_resource_is_made_with_its_rules_in_one_go(
    setup: SetupClient, client: BookingClient, db: asyncpg.Pool, tenant: str
) -> None:
    made = await setup.restaurant(rules(lead=120, price_period=60))
    slotted = await client.resource()

    got = await client.inventory.GetResource(
        pb.GetResourceRequest(resource_id=made.resource_id), metadata=client.md
    )
    listed = await client.inventory.ListResources(pb.ListResourcesRequest(), metadata=client.md)
    read = await setup.setup(made.resource_id)

    assert made.kind == pb.RESOURCE_KIND_WINDOWED
    assert got.resource.kind == pb.RESOURCE_KIND_WINDOWED
    assert slotted.kind == pb.RESOURCE_KIND_SLOTTED
    assert {r.resource_id: r.kind for r in listed.resources} == {
        made.resource_id: pb.RESOURCE_KIND_WINDOWED,
        slotted.resource_id: pb.RESOURCE_KIND_SLOTTED,
    }
    assert read.resource == made
    assert read.rules == rules(lead=120, price_period=60)
    assert list(read.units) == []
    assert read.hours == pb.OpeningHours()
    actions, messages = await changes(db, tenant)
    assert actions == ["resource.created", "window_rules.set", "resource.created"]
    assert messages == [
        {
            "key": made.resource_id,
            "change": "window_rules.set",
            "resource_id": made.resource_id,
            "slot_ids": [],
        }
    ]


async def test_set_window_rules_replaces_them_and_makes_a_bare_slotted_resource_windowed(
    setup: SetupClient, client: BookingClient
) -> None:
    windowed = await setup.restaurant()
    bare = await client.resource()
    with_slots, _ = await client.resource_with_slots()
    hotel = rules(
        min_minutes=24 * 60, max_minutes=14 * 24 * 60, every=60, after=0, price_period=1440
    )

    replaced = await client.inventory.SetWindowRules(
        pb.SetWindowRulesRequest(resource_id=windowed.resource_id, rules=hotel), metadata=client.md
    )
    converted = await client.inventory.SetWindowRules(
        pb.SetWindowRulesRequest(resource_id=bare.resource_id, rules=rules()), metadata=client.md
    )
    refused = await error_of(
        client.inventory.SetWindowRules(
            pb.SetWindowRulesRequest(resource_id=with_slots.resource_id, rules=rules()),
            metadata=client.md,
        )
    )

    assert replaced.rules == hotel
    assert (await setup.setup(windowed.resource_id)).rules == hotel
    assert converted.rules == rules()
    assert (await setup.setup(bare.resource_id)).resource.kind == pb.RESOURCE_KIND_WINDOWED
    assert (refused.code, refused.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "RESOURCE_NOT_WINDOWED",
    )
    assert "has slots" in refused.message


async def test_units_are_added_renamed_resized_retired_and_restored(
    setup: SetupClient, client: BookingClient, db: asyncpg.Pool, tenant: str
) -> None:
    resource = await setup.restaurant()
    rid = resource.resource_id
    t6 = await setup.unit(rid, "T6", 6)
    t4 = await setup.unit(rid, "  T4 ", 4)
    t2 = await setup.unit(rid, "T2", 2)

    renamed = await client.inventory.UpdateUnit(
        pb.UpdateUnitRequest(unit_id=t2.unit_id, name="Window 2"), metadata=client.md
    )
    resized = await client.inventory.UpdateUnit(
        pb.UpdateUnitRequest(unit_id=t6.unit_id, size=8), metadata=client.md
    )
    unchanged = await client.inventory.UpdateUnit(
        pb.UpdateUnitRequest(unit_id=t6.unit_id, size=8, name="T6"), metadata=client.md
    )
    retired = await client.inventory.RetireUnit(
        pb.RetireUnitRequest(unit_id=t4.unit_id), metadata=client.md
    )
    retired_again = await client.inventory.RetireUnit(
        pb.RetireUnitRequest(unit_id=t4.unit_id), metadata=client.md
    )
    read = await setup.setup(rid)

    assert (t4.name, t4.size, t4.active, t4.resource_id) == ("T4", 4, True, rid)
    assert (renamed.unit.name, renamed.unit.size) == ("Window 2", 2)
    assert (resized.unit.name, resized.unit.size) == ("T6", 8)
    assert unchanged.unit == resized.unit
    assert not retired.unit.active
    assert retired_again.unit == retired.unit
    # Best first: the smallest, then by name; retired ones too.
    assert [(u.name, u.size, u.active) for u in read.units] == [
        ("Window 2", 2, True),
        ("T4", 4, False),
        ("T6", 8, True),
    ]
    restored = await client.inventory.RestoreUnit(
        pb.RestoreUnitRequest(unit_id=t4.unit_id), metadata=client.md
    )
    assert restored.unit.active
    actions, messages = await changes(db, tenant)
    assert actions[2:] == [
        "unit.created",
        "unit.created",
        "unit.created",
        "unit.changed",
        "unit.changed",
        "unit.retired",
        "unit.restored",
    ]
    assert [m["change"] for m in messages[1:]] == actions[2:]
    assert {m["key"] for m in messages} == {rid}
    details = await db.fetch(
        "SELECT details FROM audit_log WHERE tenant_id = $1 AND action = 'unit.changed'"
        " ORDER BY id",
        tenant,
    )
    assert [json.loads(r["details"]) for r in details] == [
        {"name": {"from": "T2", "to": "Window 2"}},
        {"size": {"from": 6, "to": 8}},
    ]


async def test_a_unit_request_id_answers_its_first_response_again(
    setup: SetupClient, client: BookingClient, db: asyncpg.Pool, tenant: str
) -> None:
    resource = await setup.restaurant()

    first = await setup.unit(resource.resource_id, "T1", 2, request_id="unit-1")
    again = await setup.unit(resource.resource_id, "T1", 2, request_id="unit-1")
    reused = await error_of(setup.unit(resource.resource_id, "T9", 2, request_id="unit-1"))

    assert again == first
    assert (reused.code, reused.reason) == (grpc.StatusCode.ALREADY_EXISTS, "REQUEST_ID_REUSED")
    assert len((await setup.setup(resource.resource_id)).units) == 1


async def test_a_unit_name_taken_is_unit_exists_and_changes_nothing(
    setup: SetupClient, client: BookingClient
) -> None:
    resource = await setup.restaurant()
    other = await setup.restaurant(name="Terrace")
    t1 = await setup.unit(resource.resource_id, "T1", 2)
    t2 = await setup.unit(resource.resource_id, "T2", 2)

    added = await error_of(setup.unit(resource.resource_id, "T1", 4))
    renamed = await error_of(
        client.inventory.UpdateUnit(
            pb.UpdateUnitRequest(unit_id=t2.unit_id, name="T1", size=6), metadata=client.md
        )
    )
    elsewhere = await setup.unit(other.resource_id, "T1", 2)

    for error in (added, renamed):
        assert (error.code, error.reason) == (grpc.StatusCode.ALREADY_EXISTS, "UNIT_EXISTS")
    assert elsewhere.name == "T1"
    units = (await setup.setup(resource.resource_id)).units
    assert [(u.unit_id, u.name, u.size) for u in units] == [
        (t1.unit_id, "T1", 2),
        (t2.unit_id, "T2", 2),
    ]


async def test_weekly_hours_and_dated_exceptions_read_back_as_written(
    setup: SetupClient, client: BookingClient, db: asyncpg.Pool, tenant: str
) -> None:
    resource = await setup.restaurant()
    rid = resource.resource_id

    weekly = await setup.weekly(
        rid,
        day(TUE, "18:00-23:00", "12:00-15:00"),
        day(SAT, "18:00-01:00"),
        day(SUN, "00:00-00:00"),
    )
    closed = await client.inventory.SetHoursException(
        pb.SetHoursExceptionRequest(
            resource_id=rid, exception=pb.HoursException(date="2030-12-24")
        ),
        metadata=client.md,
    )
    special = await client.inventory.SetHoursException(
        pb.SetHoursExceptionRequest(
            resource_id=rid,
            exception=pb.HoursException(date="2030-12-31", ranges=opening("19:00-03:00")),
        ),
        metadata=client.md,
    )
    replaced = await setup.weekly(rid, day(MON, "11:00-14:00"))

    assert as_text(weekly) == {
        "WEEKDAY_TUESDAY": ["12:00-15:00", "18:00-23:00"],
        "WEEKDAY_SATURDAY": ["18:00-01:00"],
        "WEEKDAY_SUNDAY": ["00:00-00:00"],
    }
    assert as_text(closed.hours)["2030-12-24"] == []
    assert as_text(special.hours)["2030-12-31"] == ["19:00-03:00"]
    assert as_text(replaced) == {
        "WEEKDAY_MONDAY": ["11:00-14:00"],
        "2030-12-24": [],
        "2030-12-31": ["19:00-03:00"],
    }
    cleared = await client.inventory.ClearHoursException(
        pb.ClearHoursExceptionRequest(resource_id=rid, date="2030-12-24"), metadata=client.md
    )
    cleared_again = await client.inventory.ClearHoursException(
        pb.ClearHoursExceptionRequest(resource_id=rid, date="2030-12-24"), metadata=client.md
    )
    assert as_text(cleared.hours) == {
        "WEEKDAY_MONDAY": ["11:00-14:00"],
        "2030-12-31": ["19:00-03:00"],
    }
    assert cleared_again.hours == cleared.hours
    assert (await setup.setup(rid)).hours == cleared.hours
    actions, messages = await changes(db, tenant)
    # Clearing a date that has no exception changes nothing, and says nothing.
    assert actions[2:] == [
        "hours.weekly_set",
        "hours.exception_set",
        "hours.exception_set",
        "hours.weekly_set",
        "hours.exception_cleared",
    ]
    assert [m["change"] for m in messages[1:]] == actions[2:]
    assert all(m["slot_ids"] == [] and m["resource_id"] == rid for m in messages)
