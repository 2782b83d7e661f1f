"""Window availability over HTTP and Server-Sent Events: the JSON says what
the availability service says, errors are problem documents, and a stream
on a windowed resource sends the new starts once a window is placed and its
change message relayed."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import asyncpg
import httpx
import pytest

from holdfast.scheduling.hours import OpeningRange
from holdfast.scheduling.intervals import Interval
from holdfast.scheduling.rules import WindowRules
from holdfast.tenancy.keys import KeyRepository
from services.booking.server import BookingApp
from tests.support.availability import AvailabilityClient
from tests.support.booking import BookingClient
from tests.support.gateway import EventStream, key_for, problem_of
from tests.support.windows import (
    EVERY_DAY,
    WindowDesk,
    WindowedResource,
    same_hours,
    window_availability,
)

HOUR = timedelta(hours=1)
DAY = date(2031, 6, 7)
QUERY: dict[str, str | int] = {
    "first_date": "2031-06-07",
    "last_date": "2031-06-07",
    "party_size": 3,
    "duration": 120,
}
RULES = WindowRules(HOUR, 3 * HOUR, timedelta(minutes=15), buffer_after=timedelta(minutes=15))


@pytest.fixture
def desk(booking_app: BookingApp, db: asyncpg.Pool, tenant: str) -> WindowDesk:
    assert booking_app.relay is not None
    return WindowDesk.on(db, booking_app.relay.wake, tenant)


@pytest.fixture
async def room(desk: WindowDesk) -> WindowedResource:
    hours = same_hours(EVERY_DAY, OpeningRange(time(18), time(23)))
    return await desk.resource("Europe/Paris", RULES, {"T2": 2, "T4": 4, "T6": 6}, hours)


def _at(room: WindowedResource, hour: int) -> Interval:
    start = datetime.combine(DAY, time(hour), tzinfo=room.zone)
    return Interval(start, start + 2 * HOUR)


async def test_the_json_says_what_the_service_says(
    api: httpx.AsyncClient,
    keys: KeyRepository,
    tenant: str,
    availability: AvailabilityClient,
    desk: WindowDesk,
    room: WindowedResource,
) -> None:
    auth = await key_for(keys, tenant)
    await desk.place(room, "T4", _at(room, 19))

    response = await api.get(
        f"/v1/resources/{room.id}/window-availability", params=QUERY, headers=auth
    )
    answer = await window_availability(availability, room.id, DAY, DAY, 3, 2 * HOUR)

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["time_zone"], body["party_size"], body["duration_minutes"]) == (
        "Europe/Paris",
        3,
        120,
    )
    assert [(datetime.fromisoformat(s["start"]), s["unit_id"]) for s in body["starts"]] == [
        (s.start_time.ToDatetime(UTC), s.unit_id) for s in answer.starts
    ]
    assert [u["name"] for u in body["units"]] == ["T4", "T6"]
    assert datetime.fromisoformat(body["units"][0]["free"][0]["end"]) == _at(room, 19).start


async def test_errors_are_problem_documents(
    api: httpx.AsyncClient,
    keys: KeyRepository,
    tenant: str,
    client: BookingClient,
    room: WindowedResource,
) -> None:
    auth = await key_for(keys, tenant)
    slotted = await client.resource()
    path = "/v1/resources/{}/window-availability"

    too_long = await api.get(path.format(room.id), params={**QUERY, "duration": 600}, headers=auth)
    bad_date = await api.get(
        path.format(room.id), params={**QUERY, "first_date": "7 June"}, headers=auth
    )
    not_windowed = await api.get(path.format(slotted.resource_id), params=QUERY, headers=auth)
    unknown = await api.get(
        path.format("00000000-0000-4000-8000-000000000000"), params=QUERY, headers=auth
    )

    assert [e["field"] for e in problem_of(too_long, 422)["errors"]] == ["duration"]
    assert [e["field"] for e in problem_of(bad_date, 422)["errors"]] == ["query.first_date"]
    problem_of(not_windowed, 409, "RESOURCE_NOT_WINDOWED")
    problem_of(unknown, 404, "RESOURCE_NOT_FOUND")


async def test_a_stream_sends_the_new_starts_after_a_window_is_placed(
    api: httpx.AsyncClient,
    keys: KeyRepository,
    tenant: str,
    desk: WindowDesk,
    room: WindowedResource,
) -> None:
    auth = await key_for(keys, tenant)
    path = f"/v1/resources/{room.id}/window-availability/stream"
    six_only: dict[str, str | int] = {**QUERY, "party_size": 6}

    async with api.stream("GET", path, params=six_only, headers=auth) as response:
        assert response.status_code == 200, await response.aread()
        stream = EventStream(response)
        first = await stream.next_event()
        await desk.place(room, "T6", _at(room, 20))
        seen = [await stream.next_event(within=10)]
        # Each event carries the answer when it was sent; the window must
        # show within a few, not necessarily in the very next.
        while seen[-1].json()["starts"] and len(seen) < 5:
            seen.append(await stream.next_event(within=10))

    assert first.event == "availability"
    assert len(first.json()["starts"]) == 13  # 18:00 to 21:00 on the six
    assert seen[-1].event == "availability"
    assert seen[-1].json()["starts"] == []  # 20:00-22:15 taken: no two hours fit
    assert seen[-1].id != first.id
