"""Availability of windowed resources over gRPC: the answer is what
`holdfast.scheduling` says of the database's rows, exact after every change
(a change message drops the cached inputs), and bad requests get clear
errors. The days the clocks change are in test_window_time_zones.py.

Windows are placed through the booking service's repository with the change
message the booking service writes beside each windowed hold, and the
shared booking service's relay publishes it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from holdfast.contracts.availability.v1 import availability_pb2
from holdfast.scheduling.hours import OpeningRange
from holdfast.scheduling.intervals import Interval
from holdfast.scheduling.rules import WindowRules
from services.availability.server import AvailabilityApp
from services.booking.server import BookingApp
from tests.support.availability import AvailabilityClient, settled
from tests.support.booking import BookingClient, error_of
from tests.support.metrics import sample
from tests.support.windows import (
    EVERY_DAY,
    WindowDesk,
    WindowedResource,
    expected,
    same_hours,
    seen,
    window_availability,
)

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
PARIS = ZoneInfo("Europe/Paris")
# A Saturday and Sunday far enough ahead that the lead time never matters.
FIRST, LAST = date(2030, 6, 1), date(2030, 6, 2)
# Seatings of 1 to 3 hours every 15 minutes, with 15 minutes' turnover.
SEATINGS = WindowRules(
    min_duration=HOUR,
    max_duration=3 * HOUR,
    granularity=15 * MINUTE,
    buffer_after=15 * MINUTE,
)
EVENINGS = same_hours(EVERY_DAY, OpeningRange(time(18), time(23)))
TABLES = {"T2": 2, "T4a": 4, "T4b": 4, "T6": 6}
TWO_HOURS = 2 * HOUR


@pytest.fixture
def desk(booking_app: BookingApp, db: asyncpg.Pool, tenant: str) -> WindowDesk:
    assert booking_app.relay is not None
    return WindowDesk.on(db, booking_app.relay.wake, tenant)


@pytest.fixture
async def dining_room(desk: WindowDesk) -> WindowedResource:
    return await desk.resource("Europe/Paris", SEATINGS, TABLES, EVENINGS)


def at(day: date, hour: int, minute: int = 0, length: timedelta = TWO_HOURS) -> Interval:
    start = datetime.combine(day, time(hour, minute), tzinfo=PARIS)
    return Interval(start, start + length)


async def check_exact(
    availability: AvailabilityClient,
    desk: WindowDesk,
    room: WindowedResource,
    party_size: int = 3,
    duration: timedelta = TWO_HOURS,
) -> None:
    answer = await window_availability(availability, room.id, FIRST, LAST, party_size, duration)
    now = datetime.now(UTC)
    assert seen(answer) == await expected(desk, room, FIRST, LAST, party_size, duration, now)


async def test_the_answer_is_what_the_rules_say_of_the_rows(
    availability: AvailabilityClient, desk: WindowDesk, dining_room: WindowedResource
) -> None:
    await desk.place(dining_room, "T4a", at(FIRST, 19))
    await desk.place(dining_room, "T4b", at(FIRST, 19, 30))
    await desk.place(dining_room, "T6", at(LAST, 20))

    answer = await window_availability(availability, dining_room.id, FIRST, LAST, 3, TWO_HOURS)

    assert answer.resource_id == str(dining_room.id)
    assert (answer.time_zone, answer.first_date, answer.last_date) == (
        "Europe/Paris",
        "2030-06-01",
        "2030-06-02",
    )
    assert (answer.party_size, answer.duration.seconds) == (3, 7200)
    assert [u.name for u in answer.units] == ["T4a", "T4b", "T6"]  # T2 is too small
    assert seen(answer) == await expected(
        desk, dining_room, FIRST, LAST, 3, TWO_HOURS, datetime.now(UTC)
    )
    # Saturday 19:00: both fours taken (19:00-21:15, 19:30-21:45), the six is free.
    seven = at(FIRST, 19).start
    t6 = str(dining_room.units["T6"].id)
    assert (seven, t6) in seen(answer).starts
    # Free of the buffered window: 18:00-19:00 and 21:15-23:00 on T4a.
    assert seen(answer).free["T4a"][:2] == [
        Interval(at(FIRST, 18).start, seven),
        Interval(at(FIRST, 21, 15).start, at(FIRST, 23).start),
    ]


async def test_every_change_shows_exactly(
    availability: AvailabilityClient,
    availability_app: AvailabilityApp,
    desk: WindowDesk,
    dining_room: WindowedResource,
    db: asyncpg.Pool,
    tenant: str,
) -> None:
    async def after_each_change() -> None:
        # Read before the message is applied or after: once it is, the
        # answer is exact, and a second read comes from the cache.
        await settled(availability_app, db, tenant)
        hits = sample(availability_app, "holdfast_availability_cache_hits_total", level="local")
        await check_exact(availability, desk, dining_room)
        await check_exact(availability, desk, dining_room)
        assert (
            sample(availability_app, "holdfast_availability_cache_hits_total", level="local") > hits
        )

    await after_each_change()
    first = await desk.place(dining_room, "T4a", at(FIRST, 19))
    await after_each_change()
    await desk.place(dining_room, "T4b", at(FIRST, 19))
    await after_each_change()
    await desk.place(dining_room, "T6", at(FIRST, 18))
    await after_each_change()
    await desk.release(dining_room, first)
    await after_each_change()
    await desk.retire(dining_room, "T4b")
    await after_each_change()


async def test_a_change_message_drops_the_cached_inputs(
    availability: AvailabilityClient,
    availability_app: AvailabilityApp,
    desk: WindowDesk,
    dining_room: WindowedResource,
    db: asyncpg.Pool,
    tenant: str,
) -> None:
    await settled(availability_app, db, tenant)
    before = await window_availability(availability, dining_room.id, FIRST, FIRST, 6, TWO_HOURS)
    assert len(before.starts) == 13  # 18:00 to 21:00, every 15 minutes, on the six

    await desk.place(dining_room, "T6", at(FIRST, 20))
    await settled(availability_app, db, tenant)
    after = await window_availability(availability, dining_room.id, FIRST, FIRST, 6, TWO_HOURS)

    # Even 18:00-20:00 needs its turnover until 20:15: no start is left.
    assert list(after.starts) == []
    assert seen(after).free == {
        "T6": [
            Interval(at(FIRST, 18).start, at(FIRST, 20).start),
            Interval(at(FIRST, 22, 15).start, at(FIRST, 23).start),
        ]
    }


async def test_the_duration_defaults_to_the_minimum_and_may_run_to_the_maximum(
    availability: AvailabilityClient, dining_room: WindowedResource
) -> None:
    default = await window_availability(availability, dining_room.id, FIRST, FIRST, 2)
    longest = await window_availability(availability, dining_room.id, FIRST, FIRST, 2, 3 * HOUR)

    assert default.duration.seconds == 3600
    # 18:00 to 22:00 for an hour (17 starts), to 20:00 for three hours (9).
    assert (len(default.starts), len(longest.starts)) == (17, 9)


async def test_the_lead_time_is_counted_from_each_request(
    availability: AvailabilityClient, desk: WindowDesk
) -> None:
    rules = WindowRules(HOUR, HOUR, 15 * MINUTE, lead_time=2 * HOUR)
    always = same_hours(EVERY_DAY, OpeningRange(time(0), time(0)))
    room = await desk.resource("UTC", rules, {"R": 1}, always)
    today = datetime.now(UTC).date()

    before = datetime.now(UTC)
    answer = await window_availability(availability, room.id, today, today + timedelta(days=1))
    after = datetime.now(UTC)

    starts = [s.start_time.ToDatetime(UTC) for s in answer.starts]
    assert starts
    assert starts[0] >= before + 2 * HOUR
    assert starts[0] < after + 2 * HOUR + 15 * MINUTE


async def test_a_slotted_resource_is_not_windowed(
    client: BookingClient, availability: AvailabilityClient
) -> None:
    resource = await client.resource()

    error = await error_of(window_availability(availability, resource.resource_id, FIRST, LAST))

    assert error.code == grpc.StatusCode.FAILED_PRECONDITION
    assert error.reason == "RESOURCE_NOT_WINDOWED"


async def test_unknown_and_foreign_resources_are_not_found(
    availability: AvailabilityClient,
    availability_channel: grpc.aio.Channel,
    dining_room: WindowedResource,
) -> None:
    stranger = AvailabilityClient.on(availability_channel, "someone-else")
    for call in (
        window_availability(stranger, dining_room.id, FIRST, LAST),
        window_availability(availability, "00000000-0000-4000-8000-000000000000", FIRST, LAST),
    ):
        error = await error_of(call)
        assert (error.code, error.reason) == (grpc.StatusCode.NOT_FOUND, "RESOURCE_NOT_FOUND")


async def test_a_windowed_resource_has_no_slots(
    availability: AvailabilityClient, dining_room: WindowedResource
) -> None:
    answer = await availability.get(str(dining_room.id))
    assert list(answer.slots) == []


async def test_a_change_not_yet_applied_here_is_read_from_postgres(
    availability: AvailabilityClient,
    availability_app: AvailabilityApp,
    dining_room: WindowedResource,
    db: asyncpg.Pool,
    tenant: str,
) -> None:
    await settled(availability_app, db, tenant)
    await window_availability(availability, dining_room.id, FIRST, LAST)  # cached now

    fresh = sample(availability_app, "holdfast_availability_cache_misses_total", reason="fresh")
    hits = sample(availability_app, "holdfast_availability_cache_hits_total", level="local")
    await window_availability(availability, dining_room.id, FIRST, LAST, min_change_id="0-1")
    await window_availability(
        availability, dining_room.id, FIRST, LAST, min_change_id="99999999999999-0"
    )

    assert sample(availability_app, "holdfast_availability_cache_hits_total", level="local") == (
        hits + 1
    )
    assert sample(availability_app, "holdfast_availability_cache_misses_total", reason="fresh") == (
        fresh + 1
    )


BAD_REQUESTS = [
    ({"resource_id": "not-a-uuid"}, "resource_id", "must be a UUID"),
    ({"first_date": ""}, "first_date", "is required"),
    ({"first_date": "2030-6-1"}, "first_date", "must be a date such as 2031-06-01"),
    ({"last_date": "2030-02-30"}, "last_date", "must be a date such as 2031-06-01"),
    ({"last_date": "2030-05-31"}, "last_date", "must not be before first_date"),
    ({"last_date": "2030-08-02"}, "last_date", "at most 62 days from first_date"),
    ({"first_date": "1900-01-01"}, "first_date", "must be between 1971-01-01 and 2105-12-31"),
    ({"party_size": 0}, "party_size", "must be at least 1"),
    ({"duration": 90}, "duration", "must be a positive whole number of minutes"),
    ({"duration": -3600}, "duration", "must be a positive whole number of minutes"),
    ({"duration": 30 * 60}, "duration", "must be between 60 and 180 minutes"),
    ({"duration": 240 * 60}, "duration", "must be between 60 and 180 minutes"),
    ({"min_change_id": "yesterday"}, "min_change_id", "must be a stream entry id"),
]


@pytest.mark.parametrize(("change", "field", "says"), BAD_REQUESTS)
async def test_bad_requests_name_the_field(
    availability: AvailabilityClient,
    dining_room: WindowedResource,
    change: dict[str, object],
    field: str,
    says: str,
) -> None:
    fields: dict[str, object] = {
        "resource_id": str(dining_room.id),
        "first_date": "2030-06-01",
        "last_date": "2030-06-02",
        "party_size": 2,
        **change,
    }
    if "duration" in fields:
        fields["duration"] = Duration(seconds=int(fields["duration"]))  # type: ignore[call-overload]
    request = availability_pb2.GetWindowAvailabilityRequest(**fields)  # type: ignore[arg-type]

    error = await error_of(
        availability.stub.GetWindowAvailability(request, metadata=availability.md)
    )

    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in error.field_violations] == [field]
    assert says in error.field_violations[0][1]
