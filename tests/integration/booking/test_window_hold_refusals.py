"""A window hold the resource cannot take is refused with an error naming
what is wrong, and writes nothing: no hold, window, audit, outbox or
request-id row. Request ids replay as for slotted holds, and another
tenant's resource or unit does not exist."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, time, timedelta

import asyncpg
import grpc
import pytest

from holdfast.contracts.booking.v1 import booking_pb2
from holdfast.contracts.common.v1 import time_range_pb2
from holdfast.scheduling.hours import OpeningRange
from holdfast.scheduling.rules import WindowRules
from services.booking.repository import BookingRepository
from tests.support.booking import BookingClient, error_of, outcome
from tests.support.window_holds import (
    EVENING,
    SEATINGS,
    TWO_HOURS,
    live_windows,
    window_hold,
    window_request,
    windowed_resource,
    written_rows,
)

INVALID = grpc.StatusCode.INVALID_ARGUMENT
REFUSED = grpc.StatusCode.FAILED_PRECONDITION
MISSING = grpc.StatusCode.NOT_FOUND
MINUTE = timedelta(minutes=1)
# Open 18:00 to 23:00 in Paris (16:00 to 21:00 UTC in June), every day.
DINNER = {day: (OpeningRange(time(18), time(23)),) for day in range(7)}
SIX_PM = datetime(2031, 6, 2, 16, 0, tzinfo=UTC)


def at(start: datetime, end: datetime, **fields: object) -> dict[str, object]:
    return {"start": start, "end": end, **fields}


# (what is wrong, the request's window and fields, the answer: code, reason, field)
BAD_WINDOWS = [
    (
        "end before start",
        at(SIX_PM + TWO_HOURS, SIX_PM, party_size=2),
        (INVALID, "INVALID_ARGUMENT", "window"),
    ),
    (
        "off the quarter-hour grid",
        at(SIX_PM + 5 * MINUTE, SIX_PM + 5 * MINUTE + TWO_HOURS, party_size=2),
        (INVALID, "INVALID_ARGUMENT", "window.start"),
    ),
    (
        "outside the opening hours",
        at(SIX_PM + 4 * 60 * MINUTE, SIX_PM + 6 * 60 * MINUTE, party_size=2),
        (INVALID, "INVALID_ARGUMENT", "window"),
    ),
    (
        "shorter than the shortest seating",
        at(SIX_PM, SIX_PM + 15 * MINUTE, party_size=2),
        (INVALID, "INVALID_ARGUMENT", "window"),
    ),
    (
        "longer than the longest seating",
        at(SIX_PM, SIX_PM + 5 * 60 * MINUTE, party_size=2),
        (INVALID, "INVALID_ARGUMENT", "window"),
    ),
    (
        "a party larger than any table",
        at(SIX_PM, SIX_PM + TWO_HOURS, party_size=7),
        (INVALID, "INVALID_ARGUMENT", "party_size"),
    ),
    (
        "neither a party nor a unit",
        at(SIX_PM, SIX_PM + TWO_HOURS),
        (INVALID, "INVALID_ARGUMENT", "party_size"),
    ),
    (
        "a party size below one",
        at(SIX_PM, SIX_PM + TWO_HOURS, party_size=-1),
        (INVALID, "INVALID_ARGUMENT", "party_size"),
    ),
    (
        "a window of years",
        at(SIX_PM, SIX_PM + timedelta(days=800), party_size=2),
        (INVALID, "INVALID_ARGUMENT", "window"),
    ),
    (
        "a window past 2106",
        at(
            datetime(2200, 1, 1, 18, tzinfo=UTC),
            datetime(2200, 1, 1, 20, tzinfo=UTC),
            party_size=2,
        ),
        (INVALID, "INVALID_ARGUMENT", "window"),
    ),
]


async def dining_room(db: asyncpg.Pool, tenant: str) -> tuple[str, dict[str, str]]:
    room = await windowed_resource(db, tenant, weekly=DINNER)
    return room.resource_id, room.units


@pytest.mark.parametrize(("case", "asked", "answer"), BAD_WINDOWS, ids=[c[0] for c in BAD_WINDOWS])
async def test_a_bad_window_names_the_field_and_writes_nothing(
    client: BookingClient,
    db: asyncpg.Pool,
    case: str,
    asked: dict[str, object],
    answer: tuple[grpc.StatusCode, str, str],
) -> None:
    resource_id, _ = await dining_room(db, client.tenant)
    before = await written_rows(db, client.tenant)
    fields = {k: v for k, v in asked.items() if k not in ("start", "end")}
    request = window_request(
        resource_id,
        asked["start"],  # type: ignore[arg-type]
        asked["end"],  # type: ignore[arg-type]
        request_id=f"bad-{case}",
        **fields,  # type: ignore[arg-type]
    )

    error = await error_of(client.booking.CreateHold(request, metadata=client.md))

    code, reason, field = answer
    assert (error.code, error.reason) == (code, reason), error.message
    assert [f for f, _ in error.field_violations] == [field], error.field_violations
    assert await written_rows(db, client.tenant) == before


async def test_the_wrong_shape_of_request_names_the_field(
    client: BookingClient, db: asyncpg.Pool
) -> None:
    resource_id, _ = await dining_room(db, client.tenant)
    slotted, [slot] = await client.resource_with_slots()
    before = await written_rows(db, client.tenant)

    with_slots = window_request(resource_id, SIX_PM, SIX_PM + TWO_HOURS, party_size=2)
    with_slots.slot_ids.append(slot.slot_id)
    with_quantity = window_request(resource_id, SIX_PM, SIX_PM + TWO_HOURS, party_size=2)
    with_quantity.quantity = 2
    half_window = window_request(resource_id, SIX_PM, SIX_PM, party_size=2)
    half_window.window.CopyFrom(time_range_pb2.TimeRange(start_time=half_window.window.start_time))
    slots_of_windowed = booking_pb2.CreateHoldRequest(
        resource_id=resource_id, slot_ids=[slot.slot_id], quantity=1
    )
    window_of_slotted = window_request(
        slotted.resource_id, SIX_PM, SIX_PM + TWO_HOURS, party_size=2
    )
    beyond_timestamps = window_request(resource_id, SIX_PM, SIX_PM, party_size=2)
    beyond_timestamps.window.end_time.seconds = 2**40
    cases = {
        "window  ": beyond_timestamps,
        "slot_ids": with_slots,
        "quantity": with_quantity,
        "window": half_window,
        "slot_ids ": slots_of_windowed,
        "window ": window_of_slotted,
    }
    for field, request in cases.items():
        error = await error_of(client.booking.CreateHold(request, metadata=client.md))
        assert error.code == INVALID, (field, error.message)
        assert [f for f, _ in error.field_violations] == [field.strip()], error.message
    assert await written_rows(db, client.tenant) == before


async def test_inside_the_lead_time_is_too_soon(client: BookingClient, db: asyncpg.Pool) -> None:
    room = await windowed_resource(
        db,
        client.tenant,
        rules=WindowRules(
            min_duration=SEATINGS.min_duration,
            max_duration=SEATINGS.max_duration,
            granularity=SEATINGS.granularity,
            lead_time=timedelta(hours=2),
        ),
    )
    now = await db.fetchval("SELECT now()")
    soon = now.replace(second=0, microsecond=0) + timedelta(minutes=60 - now.minute)
    before = await written_rows(db, client.tenant)

    error = await error_of(
        client.booking.CreateHold(
            window_request(room.resource_id, soon, soon + TWO_HOURS, party_size=2),
            metadata=client.md,
        )
    )
    off_grid_too = await error_of(
        client.booking.CreateHold(
            window_request(
                room.resource_id, soon + 5 * MINUTE, soon + 5 * MINUTE + TWO_HOURS, party_size=2
            ),
            metadata=client.md,
        )
    )
    later = await window_hold(client, room.resource_id, soon + timedelta(hours=2), party_size=2)

    assert (error.code, error.reason) == (REFUSED, "WINDOW_TOO_SOON")
    assert (error.metadata or {})["lead_time_minutes"] == "120"
    # The request's own fault is said first: waiting would not mend it.
    assert [f for f, _ in off_grid_too.field_violations] == ["window.start"]
    assert (await written_rows(db, client.tenant))["holds"] == before["holds"] + 1
    assert await live_windows(db, client.tenant) == {later.hold_id: "T2"}


async def test_unknown_retired_and_too_small_units(client: BookingClient, db: asyncpg.Pool) -> None:
    resource_id, units = await dining_room(db, client.tenant)
    other_tenant_room = await windowed_resource(db, f"{client.tenant}-other", weekly=DINNER)
    other_room = await windowed_resource(db, client.tenant, weekly=DINNER)
    async with BookingRepository(db).transaction(client.tenant, "test") as tx:
        await tx.change_unit(uuid.UUID(units["T4"]), active=False)
    before = await written_rows(db, client.tenant)

    async def refusal(unit_id: str, party_size: int = 2) -> tuple[grpc.StatusCode, str, list[str]]:
        error = await error_of(
            client.booking.CreateHold(
                window_request(
                    resource_id,
                    SIX_PM,
                    SIX_PM + TWO_HOURS,
                    party_size=party_size,
                    unit_id=unit_id,
                ),
                metadata=client.md,
            )
        )
        return error.code, error.reason, [f for f, _ in error.field_violations]

    assert await refusal("5d3ac1b5-4f60-4a5c-9d3b-111111111111") == (
        MISSING,
        "UNIT_NOT_FOUND",
        [],
    )
    assert await refusal(other_tenant_room.units["T2"]) == (MISSING, "UNIT_NOT_FOUND", [])
    assert await refusal(other_room.units["T2"]) == (MISSING, "UNIT_NOT_FOUND", [])
    assert await refusal(units["T4"]) == (REFUSED, "UNIT_RETIRED", [])
    assert await refusal(units["T2"], party_size=3) == (INVALID, "INVALID_ARGUMENT", ["party_size"])
    assert await refusal("not-a-uuid") == (INVALID, "INVALID_ARGUMENT", ["unit_id"])
    assert await written_rows(db, client.tenant) == before

    # A party of 3 now skips the retired T4 for T6.
    hold = await window_hold(client, resource_id, SIX_PM, party_size=3)
    assert hold.window.unit_name == "T6"


async def test_another_tenants_resource_does_not_exist(
    client: BookingClient, db: asyncpg.Pool
) -> None:
    theirs = await windowed_resource(db, f"{client.tenant}-other")
    before = await written_rows(db, client.tenant)

    error = await error_of(
        client.booking.CreateHold(
            window_request(theirs.resource_id, EVENING, EVENING + TWO_HOURS, party_size=2),
            metadata=client.md,
        )
    )

    assert (error.code, error.reason) == (MISSING, "RESOURCE_NOT_FOUND")
    assert await written_rows(db, client.tenant) == before


async def test_a_resource_without_active_units_has_no_unit_that_fits(
    client: BookingClient, db: asyncpg.Pool
) -> None:
    room = await windowed_resource(db, client.tenant, units={})

    error = await error_of(
        client.booking.CreateHold(
            window_request(room.resource_id, EVENING, EVENING + TWO_HOURS, party_size=2),
            metadata=client.md,
        )
    )

    assert (error.code, error.reason) == (REFUSED, "NO_UNIT_FITS")


async def test_a_request_id_replays_the_first_hold(client: BookingClient, db: asyncpg.Pool) -> None:
    room = await windowed_resource(db, client.tenant, units={"T4": 4})
    request = window_request(
        room.resource_id, EVENING, EVENING + TWO_HOURS, party_size=2, request_id="table-for-2"
    )

    first = (await client.booking.CreateHold(request, metadata=client.md)).hold
    # The table is now taken: the replay still answers the first hold, on
    # the fast path that sees the window taken and on the locked one alike.
    replays = await asyncio.gather(
        *(client.booking.CreateHold(request, metadata=client.md) for _ in range(5))
    )
    other = window_request(
        room.resource_id, EVENING, EVENING + TWO_HOURS, party_size=3, request_id="table-for-2"
    )
    reused = await error_of(client.booking.CreateHold(other, metadata=client.md))

    assert all(r.hold == first for r in replays)
    assert (reused.code, reused.reason) == (grpc.StatusCode.ALREADY_EXISTS, "REQUEST_ID_REUSED")
    assert await live_windows(db, client.tenant) == {first.hold_id: "T4"}
    holds = await db.fetchval("SELECT count(*) FROM holds WHERE tenant_id = $1", client.tenant)
    assert holds == 1


async def test_concurrent_first_uses_of_a_request_id_make_one_hold(
    client: BookingClient, db: asyncpg.Pool
) -> None:
    room = await windowed_resource(db, client.tenant)
    request = window_request(
        room.resource_id, EVENING, EVENING + TWO_HOURS, party_size=2, request_id="once"
    )

    answers = await asyncio.gather(
        *(outcome(client.booking.CreateHold(request, metadata=client.md)) for _ in range(20))
    )

    assert set(answers) <= {"OK", "ABORTED:REQUEST_IN_PROGRESS"}
    assert len(await live_windows(db, client.tenant)) == 1
