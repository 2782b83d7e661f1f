"""1000 concurrent window holds over real gRPC on a few tables with
overlapping windows: every answer is a hold or a clean SOLD_OUT, no two live
windows on one table overlap (checked in SQL with tstzrange, apart from the
exclusion constraint), and the database holds exactly the holds the service
reported."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import timedelta

import asyncpg
import grpc

from holdfast.platform.grpc_errors import details_of
from tests.support.booking import BookingClient
from tests.support.window_holds import (
    EVENING,
    live_windows,
    overlapping_live_windows,
    window_request,
    windowed_resource,
)


async def attempt(client: BookingClient, request: object) -> tuple[str, str]:
    """("OK", hold id) or ("CODE:REASON", "")."""
    try:
        response = await client.booking.CreateHold(request, metadata=client.md)
    except grpc.aio.AioRpcError as error:
        details = details_of(error)
        return f"{details.code.name}:{details.reason}", ""
    return "OK", response.hold.hold_id


async def test_a_thousand_overlapping_window_holds_never_share_a_table(
    client: BookingClient, db: asyncpg.Pool
) -> None:
    room = await windowed_resource(db, client.tenant, units={"T2": 2, "T4": 4, "T6": 6})
    rng = random.Random(20261206)
    requests = []
    for _ in range(1000):
        start = EVENING + rng.randrange(16) * timedelta(minutes=15)
        length = timedelta(minutes=rng.choice((60, 90, 120)))
        if rng.random() < 0.2:  # some name a table, the rest give a party size
            unit = rng.choice(sorted(room.units))
            fields: dict[str, object] = {"unit_id": room.units[unit]}
        else:
            fields = {"party_size": rng.randint(1, 6)}
        requests.append(window_request(room.resource_id, start, start + length, **fields))  # type: ignore[arg-type]

    answers = await asyncio.gather(*(attempt(client, r) for r in requests))

    counts = Counter(answer for answer, _ in answers)
    assert set(counts) == {"OK", "FAILED_PRECONDITION:SOLD_OUT"}, counts
    assert counts["OK"] >= 3  # at least the first on each table
    assert await overlapping_live_windows(db, client.tenant) == 0
    reported = {hold_id for answer, hold_id in answers if answer == "OK"}
    assert set(await live_windows(db, client.tenant)) == reported
    held = await db.fetch(
        "SELECT id::text FROM holds WHERE tenant_id = $1 AND status = 'HELD'", client.tenant
    )
    assert {row["id"] for row in held} == reported
    all_holds = await db.fetchval("SELECT count(*) FROM holds WHERE tenant_id = $1", client.tenant)
    assert all_holds == len(reported)  # a refused hold left no row behind


async def test_a_hot_window_on_one_table_sells_once(
    client: BookingClient, db: asyncpg.Pool
) -> None:
    room = await windowed_resource(db, client.tenant, units={"T4": 4})
    request = window_request(room.resource_id, EVENING, EVENING + timedelta(hours=2), party_size=2)

    answers = await asyncio.gather(*(attempt(client, request) for _ in range(1000)))

    counts = Counter(answer for answer, _ in answers)
    assert counts == {"OK": 1, "FAILED_PRECONDITION:SOLD_OUT": 999}
    assert set(await live_windows(db, client.tenant)) == {h for a, h in answers if a == "OK"}
