"""Availability answers: every kind of change shows up in them, the cache
really answers, and bad requests get clear errors.

Each change is made through the booking service and then looked for through
the availability service over gRPC; the only wait is a poll with a deadline.
Before each change the answer is read (and so cached) first, so a change can
only show up through its invalidation message.
"""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import grpc
import pytest
from redis.asyncio import Redis

from holdfast.contracts.availability.v1 import availability_pb2
from holdfast.platform.proto_time import time_range
from services.availability.server import AvailabilityApp
from tests.support.availability import (
    WINDOW,
    AvailabilityClient,
    SlotCounts,
    eventually,
    settled,
)
from tests.support.booking import BASE_TIME, BookingClient, error_of
from tests.support.metrics import sample
from tests.support.services import running_availability


async def shows(
    availability: AvailabilityClient, resource_id: str, slot_id: str, expected: SlotCounts
) -> None:
    await eventually(
        lambda: availability.slot_counts(resource_id), lambda c: c.get(slot_id) == expected
    )


async def test_a_new_resource_shows_its_slots(
    client: BookingClient, availability: AvailabilityClient
) -> None:
    resource, slots = await client.resource_with_slots(count=3, capacity=4)

    answer = await availability.get(resource.resource_id)

    assert answer.resource_id == resource.resource_id
    assert [s.slot_id for s in answer.slots] == [s.slot_id for s in slots]
    assert [s.start_time for s in answer.slots] == [s.time_range.start_time for s in slots]
    assert {(s.capacity, s.available, s.held, s.booked, s.open) for s in answer.slots} == {
        (4, 4, 0, 0, True)
    }


async def test_hold_release_confirm_and_cancel_each_show(
    client: BookingClient, availability: AvailabilityClient
) -> None:
    resource, [slot] = await client.resource_with_slots(capacity=5)
    rid, sid = resource.resource_id, slot.slot_id
    await shows(availability, rid, sid, SlotCounts(5, 5, 0, 0, True))

    first = await client.hold(rid, [sid], quantity=2)
    await shows(availability, rid, sid, SlotCounts(5, 3, 2, 0, True))

    await client.release(first.hold_id)
    await shows(availability, rid, sid, SlotCounts(5, 5, 0, 0, True))

    second = await client.hold(rid, [sid], quantity=3)
    await shows(availability, rid, sid, SlotCounts(5, 2, 3, 0, True))

    await client.confirm(second.hold_id)
    await shows(availability, rid, sid, SlotCounts(5, 2, 0, 3, True))

    await client.cancel(second.hold_id)
    await shows(availability, rid, sid, SlotCounts(5, 5, 0, 0, True))


async def test_capacity_changes_and_closing_show(
    client: BookingClient, availability: AvailabilityClient
) -> None:
    resource, [slot] = await client.resource_with_slots(capacity=5)
    rid, sid = resource.resource_id, slot.slot_id
    await client.hold(rid, [sid], quantity=1)
    await shows(availability, rid, sid, SlotCounts(5, 4, 1, 0, True))

    await client.set_capacity(sid, 8)
    await shows(availability, rid, sid, SlotCounts(8, 7, 1, 0, True))

    await client.close(sid)
    await shows(availability, rid, sid, SlotCounts(8, 0, 1, 0, False))

    await client.reopen(sid)
    await shows(availability, rid, sid, SlotCounts(8, 7, 1, 0, True))


async def test_new_slots_show(client: BookingClient, availability: AvailabilityClient) -> None:
    resource, [slot] = await client.resource_with_slots(capacity=2)
    assert len((await availability.get(resource.resource_id)).slots) == 1

    [added] = await client.slots(resource.resource_id, start=BASE_TIME + timedelta(days=2))

    answer = await eventually(
        lambda: availability.get(resource.resource_id), lambda a: len(a.slots) == 2
    )
    assert [s.slot_id for s in answer.slots] == [slot.slot_id, added.slot_id]


async def test_an_expired_hold_shows(
    sweeping_client: BookingClient, availability: AvailabilityClient
) -> None:
    resource, [slot] = await sweeping_client.resource_with_slots(capacity=3)
    rid, sid = resource.resource_id, slot.slot_id
    await sweeping_client.hold(rid, [sid], quantity=2, ttl_seconds=1)
    await shows(availability, rid, sid, SlotCounts(3, 1, 2, 0, True))

    # The sweeper (every 100 ms here) expires it after a second.
    await shows(availability, rid, sid, SlotCounts(3, 3, 0, 0, True))


async def test_repeated_reads_are_answered_from_the_cache(
    client: BookingClient,
    availability: AvailabilityClient,
    availability_app: AvailabilityApp,
    db: asyncpg.Pool,
    tenant: str,
) -> None:
    resource, _ = await client.resource_with_slots(capacity=2)
    await settled(availability_app, db, tenant)
    misses = sample(availability_app, "holdfast_availability_cache_misses_total", reason="miss")
    local_hits = sample(availability_app, "holdfast_availability_cache_hits_total", level="local")

    first = await availability.get(resource.resource_id)
    again = [await availability.get(resource.resource_id) for _ in range(5)]

    assert all(answer == first for answer in again)
    assert sample(availability_app, "holdfast_availability_cache_misses_total", reason="miss") == (
        misses + 1
    )
    assert sample(availability_app, "holdfast_availability_cache_hits_total", level="local") == (
        local_hits + 5
    )


async def test_without_the_local_level_redis_answers(
    client: BookingClient, migrated_database: str, tenant: str, db: asyncpg.Pool, redis: Redis
) -> None:
    resource, [slot] = await client.resource_with_slots(capacity=2)
    async with (
        running_availability(migrated_database, local_cache_entries=0) as app,
        grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel,
    ):
        await settled(app, db, tenant)
        availability = AvailabilityClient.on(channel, tenant)
        await availability.get(resource.resource_id)
        await redis.script_flush()  # as after a Redis restart: the read script is reloaded
        await availability.get(resource.resource_id)
        assert sample(app, "holdfast_availability_cache_hits_total", level="redis") == 1
        assert sample(app, "holdfast_availability_cache_errors_total") == 0

        await client.hold(resource.resource_id, [slot.slot_id])
        await shows(availability, resource.resource_id, slot.slot_id, SlotCounts(2, 1, 1, 0, True))


async def test_batch_answers_in_request_order(
    client: BookingClient, availability: AvailabilityClient
) -> None:
    first, _ = await client.resource_with_slots(capacity=1)
    second, _ = await client.resource_with_slots(capacity=2)

    answers = await availability.batch([second.resource_id, first.resource_id])

    assert [a.resource_id for a in answers] == [second.resource_id, first.resource_id]
    assert [a.slots[0].capacity for a in answers] == [2, 1]


async def test_the_range_selects_slots_by_start(
    client: BookingClient, availability: AvailabilityClient
) -> None:
    resource = await client.resource(capacity=1)
    slots = await client.slots(resource.resource_id, count=3)  # 9:00, 10:00, 11:00

    answer = await availability.get(
        resource.resource_id, BASE_TIME + timedelta(hours=1), BASE_TIME + timedelta(hours=2)
    )

    assert [s.slot_id for s in answer.slots] == [slots[1].slot_id]


async def test_unknown_and_foreign_resources_are_not_found(
    client: BookingClient, availability: AvailabilityClient, availability_channel: grpc.aio.Channel
) -> None:
    resource, _ = await client.resource_with_slots()
    stranger = AvailabilityClient.on(availability_channel, "someone-else")

    for call in (
        stranger.get(resource.resource_id),
        availability.get("00000000-0000-4000-8000-000000000000"),
        availability.batch([resource.resource_id, "00000000-0000-4000-8000-000000000000"]),
    ):
        error = await error_of(call)
        assert error.code == grpc.StatusCode.NOT_FOUND
        assert error.reason == "RESOURCE_NOT_FOUND"


@pytest.mark.parametrize(
    ("resource_id", "start", "end", "field", "says"),
    [
        ("not-a-uuid", WINDOW[0], WINDOW[1], "resource_id", "must be a UUID"),
        ("", WINDOW[0], WINDOW[1], "resource_id", "is required"),
        (None, WINDOW[1], WINDOW[0], "time_range", "end_time must be after start_time"),
        (None, BASE_TIME, BASE_TIME + timedelta(days=63), "time_range", "at most 62 days"),
    ],
)
async def test_bad_requests_name_the_field(
    client: BookingClient,
    availability: AvailabilityClient,
    resource_id: str | None,
    start: object,
    end: object,
    field: str,
    says: str,
) -> None:
    if resource_id is None:
        resource_id = (await client.resource()).resource_id

    error = await error_of(availability.get(resource_id, start, end))  # type: ignore[arg-type]

    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in error.field_violations] == [field]
    assert says in error.field_violations[0][1]


async def test_a_missing_range_is_refused(
    client: BookingClient, availability: AvailabilityClient
) -> None:
    resource = await client.resource()
    error = await error_of(
        availability.stub.GetAvailability(
            availability_pb2.GetAvailabilityRequest(resource_id=resource.resource_id),
            metadata=availability.md,
        )
    )
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in error.field_violations] == ["time_range"]


async def test_bad_batches_name_each_problem(
    client: BookingClient, availability: AvailabilityClient
) -> None:
    resource = await client.resource()
    rid = resource.resource_id

    empty = await error_of(availability.batch([]))
    repeated = await error_of(availability.batch([rid, "nope", rid]))
    too_many = await error_of(availability.batch([rid] * 51))

    assert [f for f, _ in empty.field_violations] == ["resource_ids"]
    assert list(repeated.field_violations) == [
        ("resource_ids[1]", "must be a UUID"),
        ("resource_ids[2]", "repeats an earlier id"),
    ]
    assert ("resource_ids", "must hold at most 50 ids") in too_many.field_violations


async def test_a_range_with_too_many_slots_is_refused(
    client: BookingClient, migrated_database: str, tenant: str
) -> None:
    resource = await client.resource()
    await client.slots(resource.resource_id, count=4)
    async with (
        running_availability(migrated_database, max_slots_per_resource=3) as app,
        grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel,
    ):
        availability = AvailabilityClient.on(channel, tenant)
        error = await error_of(availability.get(resource.resource_id))
        narrower = await availability.get(
            resource.resource_id, BASE_TIME, BASE_TIME + timedelta(hours=3)
        )

    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.reason == "TOO_MANY_SLOTS"
    assert [f for f, _ in error.field_violations] == ["time_range"]
    assert len(narrower.slots) == 3


async def test_calls_without_a_tenant_are_refused(availability_channel: grpc.aio.Channel) -> None:
    error = await error_of(AvailabilityClient.on(availability_channel, "").get("x"))
    assert error.code == grpc.StatusCode.UNAUTHENTICATED


async def test_a_change_not_yet_applied_here_is_read_from_postgres(
    client: BookingClient,
    availability: AvailabilityClient,
    availability_app: AvailabilityApp,
    db: asyncpg.Pool,
    tenant: str,
) -> None:
    resource, _ = await client.resource_with_slots(capacity=2)
    await settled(availability_app, db, tenant)
    await availability.get(resource.resource_id)  # cached now

    async def read(min_change_id: str) -> None:
        await availability.stub.GetAvailability(
            availability_pb2.GetAvailabilityRequest(
                resource_id=resource.resource_id,
                time_range=time_range(*WINDOW),
                min_change_id=min_change_id,
            ),
            metadata=availability.md,
        )

    fresh = sample(availability_app, "holdfast_availability_cache_misses_total", reason="fresh")
    hits = sample(availability_app, "holdfast_availability_cache_hits_total", level="local")
    await read("0-1")  # long applied: the cache answers
    await read("99999999999999-0")  # not applied here yet: Postgres answers
    malformed = await error_of(read("yesterday"))

    assert sample(availability_app, "holdfast_availability_cache_hits_total", level="local") == (
        hits + 1
    )
    assert sample(availability_app, "holdfast_availability_cache_misses_total", reason="fresh") == (
        fresh + 1
    )
    assert [f for f, _ in malformed.field_violations] == ["min_change_id"]
