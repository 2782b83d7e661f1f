"""Local wall-clock times in an IANA zone, and the instants they name.

Opening hours and start times are written the way a restaurant or hotel
writes them: as wall-clock times. Twice a year some of those times name no
instant or two, and the rules here say which instant is meant:

- **A time that happens twice** (the fall-back hour, e.g. 02:30 in Paris on
  the last Sunday of October) names its *first* occurrence (`fold=0`), for an
  opening and for a closing alike: a place that closes "at 02:30" closes the
  first time the clock shows 02:30, and sells no extra hour.
- **A time that does not exist** (the spring-forward gap, e.g. 02:30 in Paris
  on the last Sunday of March) names the end of the gap, the instant the
  clocks jump to: a place that opens "at 02:30" opens when the clock shows
  03:00, the first moment its doors could be open at or after 02:30.

The start-time grid is wall-clock too: an instant is on the grid when the
local clock then shows a whole multiple of the granularity since midnight
(19:00, 19:15, ... for 15 minutes). So in the fall-back hour both 02:15s are
start times, in the gap there are none, and in a zone whose offset is not a
whole hour (Kathmandu, +05:45) an hourly grid falls at :15 past the hour UTC.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from holdfast.scheduling.intervals import Interval

DAY = timedelta(days=1)


def occurrences(wall: datetime, zone: ZoneInfo) -> list[datetime]:
    """The UTC instants at which the clocks in `zone` show `wall` (naive):
    none in a gap, two in a repeated hour, otherwise one."""
    if wall.tzinfo is not None:
        raise ValueError(f"a wall-clock time has no zone, got {wall.isoformat()}")
    found: list[datetime] = []
    for fold in (0, 1):
        instant = wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        # A time in a gap does not survive the round trip back to the clock.
        shown = instant.astimezone(zone).replace(tzinfo=None)
        if shown == wall and instant not in found:
            found.append(instant)
    return sorted(found)


def resolve(wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant `wall` names under the rules above, in UTC."""
    found = occurrences(wall, zone)
    if found:
        return found[0]
    return _gap_end(wall, zone)


def _gap_end(wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant the clocks jump forward across `wall`, found by bisection
    in whole seconds (the zone database's transitions are whole seconds)
    between the two readings of `wall`, one with each offset: zoneinfo does
    not expose its transitions."""
    readings = [wall.replace(tzinfo=zone, fold=f).timestamp() for f in (0, 1)]
    low, high = math.floor(min(readings)), math.ceil(max(readings))
    after = datetime.fromtimestamp(high, UTC).astimezone(zone).utcoffset()
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, UTC).astimezone(zone).utcoffset() == after:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def check_granularity(granularity: timedelta) -> None:
    """A grid counted from midnight must restart at the next midnight: whole
    minutes that divide a day."""
    minutes, rest = divmod(granularity, timedelta(minutes=1))
    if rest or minutes <= 0 or (24 * 60) % minutes:
        raise ValueError(f"granularity must be whole minutes dividing a day, got {granularity}")


def on_grid(instant: datetime, zone: ZoneInfo, granularity: timedelta) -> bool:
    """Whether the clock in `zone` at `instant` shows a multiple of `granularity`
    since local midnight."""
    shown = instant.astimezone(zone)
    since_midnight = timedelta(hours=shown.hour, minutes=shown.minute, seconds=shown.second)
    return shown.microsecond == 0 and since_midnight % granularity == timedelta(0)


def grid_instants(zone: ZoneInfo, granularity: timedelta, span: Interval) -> list[datetime]:
    """Every instant in `span` that is on the grid, in order."""
    check_granularity(granularity)
    first = span.start.astimezone(zone).date() - DAY
    last = span.end.astimezone(zone).date() + DAY
    steps = DAY // granularity
    found: set[datetime] = set()
    day = first
    while day <= last:
        midnight = datetime.combine(day, time())
        for step in range(steps):
            for instant in occurrences(midnight + step * granularity, zone):
                if span.contains_instant(instant):
                    found.add(instant)
        day += DAY
    return sorted(found)
