"""Window availability on the days the clocks change, and in zones whose
offset is not a whole hour, asked of the service over gRPC.

Opening hours are wall-clock times (holdfast.scheduling.localtime): on the
spring-forward day the skipped hour has no start times, on the fall-back
day both occurrences of the repeated hour have them, and the start grid
counts local minutes from local midnight.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from holdfast.scheduling.hours import OpeningRange
from holdfast.scheduling.rules import WindowRules
from services.booking.server import BookingApp
from tests.support.availability import AvailabilityClient
from tests.support.windows import EVERY_DAY, WindowDesk, same_hours, window_availability

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
QUARTERS = WindowRules(min_duration=15 * MINUTE, max_duration=HOUR, granularity=15 * MINUTE)
# 01:00 to 04:00 local: three hours on an ordinary night, so twelve
# 15-minute starts; two hours (8) when the clocks skip one, four (16) when
# they repeat one.
NIGHT = same_hours(EVERY_DAY, OpeningRange(time(1), time(4)))


@pytest.fixture
def desk(booking_app: BookingApp, db: asyncpg.Pool, tenant: str) -> WindowDesk:
    assert booking_app.relay is not None
    return WindowDesk.on(db, booking_app.relay.wake, tenant)


@pytest.mark.parametrize(
    ("zone", "day", "starts"),
    [
        ("Europe/Paris", date(2030, 3, 24), 12),
        ("Europe/Paris", date(2030, 3, 31), 8),  # 02:00 -> 03:00
        ("Europe/Paris", date(2030, 10, 27), 16),  # 03:00 -> 02:00
        ("America/New_York", date(2030, 3, 3), 12),
        ("America/New_York", date(2030, 3, 10), 8),  # 02:00 -> 03:00
        ("America/New_York", date(2030, 11, 3), 16),  # 02:00 -> 01:00
        ("Australia/Adelaide", date(2030, 3, 31), 12),
        ("Australia/Adelaide", date(2030, 4, 7), 16),  # 03:00 -> 02:00
        ("Australia/Adelaide", date(2030, 10, 6), 8),  # 02:00 -> 03:00
    ],
)
async def test_a_day_the_clocks_change_has_the_right_number_of_starts(
    availability: AvailabilityClient, desk: WindowDesk, zone: str, day: date, starts: int
) -> None:
    room = await desk.resource(zone, QUARTERS, {"R": 2}, NIGHT)
    local = ZoneInfo(zone)

    answer = await window_availability(availability, room.id, day, day)

    found = [s.start_time.ToDatetime(UTC) for s in answer.starts]
    assert len(found) == starts
    # Every start a quarter hour apart in elapsed time, as the clocks show them.
    assert all(b - a == 15 * MINUTE for a, b in itertools.pairwise(found))
    shown = [s.astimezone(local) for s in found]
    assert shown[0].time() == time(1)
    assert shown[-1].time() == time(3, 45)
    assert all(s.minute % 15 == 0 and s.date() == day for s in shown)
    # The unit's free interval is the night as it really lasted.
    [unit] = answer.units
    [free] = unit.free
    elapsed = free.end_time.ToDatetime(UTC) - free.start_time.ToDatetime(UTC)
    assert elapsed == starts * 15 * MINUTE


@pytest.mark.parametrize(
    ("zone", "utc_minute"),
    [("Asia/Kathmandu", 15), ("Australia/Adelaide", 30), ("Asia/Kolkata", 30)],
)
async def test_an_hourly_grid_is_on_local_hours_whatever_the_offset(
    availability: AvailabilityClient, desk: WindowDesk, zone: str, utc_minute: int
) -> None:
    hourly = WindowRules(min_duration=HOUR, max_duration=HOUR, granularity=HOUR)
    mornings = same_hours(EVERY_DAY, OpeningRange(time(9), time(13)))
    room = await desk.resource(zone, hourly, {"R": 2}, mornings)
    day = date(2030, 6, 3)

    answer = await window_availability(availability, room.id, day, day)

    found = [s.start_time.ToDatetime(UTC) for s in answer.starts]
    local = [s.astimezone(ZoneInfo(zone)).time() for s in found]
    assert local == [time(9), time(10), time(11), time(12)]
    assert {s.minute for s in found} == {utc_minute}
