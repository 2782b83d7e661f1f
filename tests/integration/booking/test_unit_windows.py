"""Windowed units: the database refuses two live buffered windows overlapping
on one unit (migration 0012's exclusion constraint), and the repository
answers that refusal with a clean SOLD_OUT, under real concurrency."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from holdfast.platform.errors import DomainError, ErrorKind
from holdfast.scheduling.hours import OpeningHours, OpeningRange
from holdfast.scheduling.intervals import Interval
from holdfast.scheduling.rules import WindowRules, buffered
from services.booking.domain import NewResource, NewSlot, ResourceUnit
from services.booking.repository import BookingRepository

EVENING = datetime(2030, 6, 1, 17, 0, tzinfo=UTC)
TWO_HOURS = timedelta(hours=2)
TURNOVER = WindowRules(
    min_duration=timedelta(minutes=30),
    max_duration=timedelta(hours=4),
    granularity=timedelta(minutes=15),
    buffer_after=timedelta(minutes=15),
)
NO_BUFFERS = WindowRules(
    min_duration=timedelta(minutes=30),
    max_duration=timedelta(hours=4),
    granularity=timedelta(minutes=15),
)


@pytest.fixture
async def repo(migrated_database: str) -> AsyncIterator[BookingRepository]:
    """A repository on a pool of real connections, as the service has."""
    pool = await asyncpg.create_pool(migrated_database, min_size=2, max_size=20)
    assert pool is not None
    yield BookingRepository(pool)
    await pool.close()


async def windowed_resource(
    repo: BookingRepository, tenant: str, rules: WindowRules, sizes: dict[str, int]
) -> list[ResourceUnit]:
    async with repo.transaction(tenant, "test") as tx:
        resource = await tx.create_resource(NewResource("Dining room", "Europe/Paris", 0, "EUR", 0))
        await tx.make_windowed(resource.id, rules)
        return [await tx.add_unit(resource.id, name, size) for name, size in sizes.items()]


async def new_holds(
    db: asyncpg.Pool, tenant: str, resource_id: uuid.UUID, count: int
) -> list[uuid.UUID]:
    """Live holds for windows to belong to (the windowed CreateHold comes later)."""
    rows = await db.fetch(
        """
        INSERT INTO holds (tenant_id, resource_id, status, quantity, currency, total_minor,
                           expires_at)
        SELECT $1, $2, 'HELD', 2, 'EUR', 0, now() + interval '1 hour'
        FROM generate_series(1, $3)
        RETURNING id
        """,
        tenant,
        resource_id,
        count,
    )
    return [row["id"] for row in rows]


async def place(
    repo: BookingRepository,
    tenant: str,
    hold_id: uuid.UUID,
    unit: ResourceUnit,
    window: Interval,
    rules: WindowRules,
) -> str:
    """Places the window in a transaction of its own; OK or the refusal's reason."""
    try:
        async with repo.transaction(tenant, "test") as tx:
            await tx.place_window(hold_id, unit, window, buffered(window, rules))
    except DomainError as error:
        return f"{error.kind.value}:{error.reason}"
    return "OK"


async def test_concurrent_overlapping_windows_never_share_a_unit(
    repo: BookingRepository, db: asyncpg.Pool, tenant: str
) -> None:
    units = await windowed_resource(repo, tenant, TURNOVER, {"T1": 2, "T2": 4, "T3": 4, "T4": 6})
    hold_ids = await new_holds(db, tenant, units[0].resource_id, 1000)
    rng = random.Random(20261206)
    attempts = [
        (
            hold_id,
            rng.choice(units),
            Interval(
                start := EVENING + rng.randrange(16) * timedelta(minutes=15), start + TWO_HOURS
            ),
        )
        for hold_id in hold_ids
    ]

    outcomes = await asyncio.gather(
        *(
            place(repo, tenant, hold_id, unit, window, TURNOVER)
            for hold_id, unit, window in attempts
        )
    )

    # Every answer is a window placed or the clean refusal, nothing else.
    counts = Counter(outcomes)
    assert set(counts) == {"OK", "FAILED_PRECONDITION:SOLD_OUT"}, counts
    # Windows of 2h15 guarded, starting within 4 hours: at most 2 per unit fit.
    assert len(units) <= counts["OK"] <= 2 * len(units)
    overlapping = await db.fetchval(
        """
        SELECT count(*) FROM unit_windows a JOIN unit_windows b
          ON a.unit_id = b.unit_id AND a.hold_id < b.hold_id
        WHERE a.tenant_id = $1 AND b.tenant_id = $1 AND a.live AND b.live
          AND tstzrange(a.starts_at, a.ends_at + interval '15 minutes', '[)')
           && tstzrange(b.starts_at, b.ends_at + interval '15 minutes', '[)')
        """,
        tenant,
    )
    assert overlapping == 0
    placed = {
        hold_id
        for (hold_id, _, _), answer in zip(attempts, outcomes, strict=True)
        if answer == "OK"
    }
    stored = await db.fetch(
        "SELECT hold_id FROM unit_windows WHERE tenant_id = $1 AND live", tenant
    )
    assert {row["hold_id"] for row in stored} == placed


async def test_windows_touching_end_to_start_both_fit(
    repo: BookingRepository, db: asyncpg.Pool, tenant: str
) -> None:
    (table,) = await windowed_resource(repo, tenant, NO_BUFFERS, {"T1": 4})
    first, second, third = await new_holds(db, tenant, table.resource_id, 3)
    seven, nine = EVENING + timedelta(hours=2), EVENING + timedelta(hours=4)

    assert await place(repo, tenant, first, table, Interval(seven, nine), NO_BUFFERS) == "OK"
    assert (
        await place(repo, tenant, second, table, Interval(nine, nine + TWO_HOURS), NO_BUFFERS)
        == "OK"
    )
    middle = Interval(seven + timedelta(hours=1), nine + timedelta(hours=1))
    assert (
        await place(repo, tenant, third, table, middle, NO_BUFFERS)
        == "FAILED_PRECONDITION:SOLD_OUT"
    )


async def test_the_buffer_keeps_the_next_window_away(
    repo: BookingRepository, db: asyncpg.Pool, tenant: str
) -> None:
    (table,) = await windowed_resource(repo, tenant, TURNOVER, {"T1": 4})
    first, second, third = await new_holds(db, tenant, table.resource_id, 3)
    seven, nine = EVENING + timedelta(hours=2), EVENING + timedelta(hours=4)

    assert await place(repo, tenant, first, table, Interval(seven, nine), TURNOVER) == "OK"
    refused = await place(repo, tenant, second, table, Interval(nine, nine + TWO_HOURS), TURNOVER)
    assert refused == "FAILED_PRECONDITION:SOLD_OUT"
    later = nine + timedelta(minutes=15)
    assert (
        await place(repo, tenant, third, table, Interval(later, later + TWO_HOURS), TURNOVER)
        == "OK"
    )


async def test_a_released_window_frees_the_unit(
    repo: BookingRepository, db: asyncpg.Pool, tenant: str
) -> None:
    (table,) = await windowed_resource(repo, tenant, TURNOVER, {"T1": 4})
    first, second, third = await new_holds(db, tenant, table.resource_id, 3)
    window = Interval(EVENING + timedelta(hours=2), EVENING + timedelta(hours=4))

    assert await place(repo, tenant, first, table, window, TURNOVER) == "OK"
    assert (
        await place(repo, tenant, second, table, window, TURNOVER) == "FAILED_PRECONDITION:SOLD_OUT"
    )
    async with repo.transaction(tenant, "test") as tx:
        assert await tx.release_windows(first) == 1
    assert await place(repo, tenant, second, table, window, TURNOVER) == "OK"

    # A hold leaving HELD frees its window by itself, whichever code moved it.
    await db.execute("UPDATE holds SET status = 'EXPIRED' WHERE id = $1", second)
    assert await place(repo, tenant, third, table, window, TURNOVER) == "OK"
    live = await db.fetch("SELECT hold_id FROM unit_windows WHERE tenant_id = $1 AND live", tenant)
    assert [row["hold_id"] for row in live] == [third]


async def test_a_refusal_leaves_the_transaction_free_to_try_another_unit(
    repo: BookingRepository, db: asyncpg.Pool, tenant: str
) -> None:
    small, large = await windowed_resource(repo, tenant, TURNOVER, {"T1": 2, "T2": 4})
    first, second = await new_holds(db, tenant, small.resource_id, 2)
    window = Interval(EVENING, EVENING + TWO_HOURS)
    assert await place(repo, tenant, first, small, window, TURNOVER) == "OK"

    async with repo.transaction(tenant, "test") as tx:
        with pytest.raises(DomainError) as refused:
            await tx.place_window(second, small, window, buffered(window, TURNOVER))
        placed = await tx.place_window(second, large, window, buffered(window, TURNOVER))

    assert (refused.value.kind, refused.value.reason) == (ErrorKind.FAILED_PRECONDITION, "SOLD_OUT")
    assert refused.value.metadata["unit_name"] == "T1"
    assert (placed.unit_id, placed.window, placed.live) == (large.id, window, True)
    setup = await repo.window_setup(tenant, small.resource_id, window)
    assert setup is not None
    assert setup.busy == {
        "T1": [buffered(window, TURNOVER)],
        "T2": [buffered(window, TURNOVER)],
    }


async def test_a_retired_unit_takes_no_window(
    repo: BookingRepository, db: asyncpg.Pool, tenant: str
) -> None:
    (table,) = await windowed_resource(repo, tenant, TURNOVER, {"T1": 4})
    (hold_id,) = await new_holds(db, tenant, table.resource_id, 1)
    async with repo.transaction(tenant, "test") as tx:
        retired = await tx.change_unit(table.id, active=False)
    assert retired is not None
    assert not retired.active

    window = Interval(EVENING, EVENING + TWO_HOURS)
    refused = await place(repo, tenant, hold_id, table, window, TURNOVER)
    assert refused == "FAILED_PRECONDITION:WINDOW_NOT_PLACED"


async def test_a_hold_no_longer_live_takes_no_window(
    repo: BookingRepository, db: asyncpg.Pool, tenant: str
) -> None:
    (table,) = await windowed_resource(repo, tenant, TURNOVER, {"T1": 4})
    (hold_id,) = await new_holds(db, tenant, table.resource_id, 1)
    await db.execute("UPDATE holds SET status = 'RELEASED' WHERE id = $1", hold_id)

    window = Interval(EVENING, EVENING + TWO_HOURS)
    refused = await place(repo, tenant, hold_id, table, window, TURNOVER)
    assert refused == "FAILED_PRECONDITION:WINDOW_NOT_PLACED"
    assert await db.fetchval("SELECT count(*) FROM unit_windows WHERE hold_id = $1", hold_id) == 0


async def test_rules_hours_and_exceptions_read_back_as_written(
    repo: BookingRepository, tenant: str
) -> None:
    (table,) = await windowed_resource(repo, tenant, TURNOVER, {"T1": 4})
    evening, late = OpeningRange(time(18), time(23)), OpeningRange(time(22), time(2))
    lunch = OpeningRange(time(12), time(14, 30))
    weekly = {day: (evening,) for day in range(5)} | {5: (lunch, late)}
    closed, special = date(2030, 12, 25), date(2030, 12, 31)
    async with repo.transaction(tenant, "test") as tx:
        await tx.set_weekly_hours(table.resource_id, weekly)
        await tx.set_hours_exception(table.resource_id, closed, ())
        await tx.set_hours_exception(table.resource_id, special, (late,))

    paris = ZoneInfo("Europe/Paris")
    hours = await repo.opening_hours(tenant, table.resource_id, paris)
    assert hours == OpeningHours(paris, weekly, {closed: (), special: (late,)})
    assert await repo.window_rules(tenant, table.resource_id) == TURNOVER
    assert await repo.units(tenant, table.resource_id) == [table]


async def test_units_and_rules_only_for_a_windowed_resource(
    repo: BookingRepository, tenant: str
) -> None:
    (table,) = await windowed_resource(repo, tenant, TURNOVER, {"T1": 4})
    with pytest.raises(DomainError) as duplicate:
        async with repo.transaction(tenant, "test") as tx:
            await tx.add_unit(table.resource_id, "T1", 2)
    assert duplicate.value.reason == "UNIT_EXISTS"

    async with repo.transaction(tenant, "test") as tx:
        slotted = await tx.create_resource(NewResource("Tours", "Europe/Paris", 0, "EUR", 5))
        await tx.create_slots(slotted, [NewSlot(EVENING, EVENING + TWO_HOURS, None)])
    with pytest.raises(DomainError) as not_windowed:
        async with repo.transaction(tenant, "test") as tx:
            await tx.add_unit(slotted.id, "T1", 2)
    assert not_windowed.value.reason == "RESOURCE_NOT_WINDOWED"
    with pytest.raises(DomainError) as has_slots:
        async with repo.transaction(tenant, "test") as tx:
            await tx.make_windowed(slotted.id, TURNOVER)
    assert has_slots.value.reason == "RESOURCE_NOT_WINDOWED"
