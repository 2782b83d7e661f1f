"""Several replicas at once: two booking services relaying the same outbox, two
availability services each keeping its own local cache, and a relay that dies
between publishing and recording it."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import cast

import asyncpg
import grpc
from redis.asyncio import Redis

from holdfast.contracts.booking.v1 import inventory_pb2
from holdfast.platform.streams import AVAILABILITY_TOPIC, stream_key
from services.availability.server import AvailabilityApp
from services.booking.server import BookingApp
from tests.support.availability import AvailabilityClient, SlotCounts, eventually, settled
from tests.support.booking import BookingClient
from tests.support.metrics import sample
from tests.support.services import own_booking_app, running_availability, running_booking

RESOURCES = 20
CAPACITY = 10


async def _stream_dedupe_keys(redis: Redis, app: AvailabilityApp, tenant: str) -> list[str]:
    entries = cast(
        "list[tuple[bytes, dict[bytes, bytes]]]",
        await redis.xrange(stream_key(app.settings, AVAILABILITY_TOPIC)),
    )
    return [
        fields[b"dedupe"].decode() for _, fields in entries if fields[b"tenant"] == tenant.encode()
    ]


def _published(app: BookingApp) -> float:
    return sample(app, "holdfast_outbox_published_total")


@dataclass
class Replicas:
    """Two booking services and two availability services on one database,
    with a client of each."""

    db: asyncpg.Pool
    bookings: list[BookingApp]
    replicas: list[AvailabilityApp]
    clients: list[BookingClient]
    readers: list[AvailabilityClient]


async def _start_replicas(stack: AsyncExitStack, own_database: str, tenant: str) -> Replicas:
    db = await stack.enter_async_context(asyncpg.create_pool(own_database, min_size=1, max_size=2))
    # Both relays poll constantly as well as being woken, so they compete
    # for the same rows rather than each taking its own.
    bookings = [
        await stack.enter_async_context(
            running_booking(own_database, relay_poll_interval_seconds=0.005, db_pool_max_size=8)
        )
        for _ in range(2)
    ]
    replicas = [
        await stack.enter_async_context(running_availability(own_database)) for _ in range(2)
    ]
    clients = [
        BookingClient.on(
            await stack.enter_async_context(grpc.aio.insecure_channel(f"127.0.0.1:{app.port}")),
            tenant,
        )
        for app in bookings
    ]
    readers = [
        AvailabilityClient.on(
            await stack.enter_async_context(grpc.aio.insecure_channel(f"127.0.0.1:{app.port}")),
            tenant,
        )
        for app in replicas
    ]
    return Replicas(db, bookings, replicas, clients, readers)


Inventory = list[tuple[inventory_pb2.Resource, list[inventory_pb2.Slot]]]


async def _inventory_cached_empty(running: Replicas, tenant: str) -> Inventory:
    """RESOURCES resources of one slot each, which both replicas cache as
    empty, each in its own local level."""
    inventory = [
        await running.clients[0].resource_with_slots(capacity=CAPACITY) for _ in range(RESOURCES)
    ]
    for replica in running.replicas:
        await settled(replica, running.db, tenant)
    for reader in running.readers:
        for resource, [slot] in inventory:
            counts = await reader.slot_counts(resource.resource_id)
            assert counts[slot.slot_id] == SlotCounts(CAPACITY, CAPACITY, 0, 0, True)
    return inventory


async def _fill_every_slot(running: Replicas, inventory: Inventory) -> None:
    """Holds spread over both booking services, all at once; returns once
    both replicas show every slot full."""
    clients, readers = running.clients, running.readers
    await asyncio.gather(
        *(
            clients[i % 2].hold(resource.resource_id, [slot.slot_id])
            for i in range(CAPACITY)
            for resource, [slot] in inventory
        )
    )

    full = SlotCounts(CAPACITY, 0, CAPACITY, 0, True)

    async def all_full(reader: AvailabilityClient) -> bool:
        for resource, [slot] in inventory:
            counts = await reader.slot_counts(resource.resource_id)
            if counts[slot.slot_id] != full:
                return False
        return True

    for reader in readers:
        await eventually(lambda r=reader: all_full(r), bool)  # type: ignore[misc]


async def test_two_relays_and_two_availability_replicas_lose_nothing(
    own_database: str, redis: Redis, tenant: str
) -> None:
    # A database of its own: exactly these two relays publish its outbox.
    async with AsyncExitStack() as stack:
        running = await _start_replicas(stack, own_database, tenant)
        db, bookings, replicas = running.db, running.bookings, running.replicas
        inventory = await _inventory_cached_empty(running, tenant)
        await _fill_every_slot(running, inventory)
        rows = await db.fetch(
            "SELECT dedupe_key, published_at FROM outbox WHERE tenant_id = $1", tenant
        )
        assert len(rows) == RESOURCES * (1 + CAPACITY)  # slots created, then each hold
        assert all(row["published_at"] is not None for row in rows)
        published = set(await _stream_dedupe_keys(redis, replicas[0], tenant))
        assert {row["dedupe_key"] for row in rows} <= published
        assert all(_published(app) > 0 for app in bookings)  # both relays took part
        assert sum(_published(app) for app in bookings) >= len(rows)


async def test_a_relay_that_died_before_recording_is_covered_by_another(
    client: BookingClient,
    availability: AvailabilityClient,
    availability_app: AvailabilityApp,
    db: asyncpg.Pool,
    redis: Redis,
    tenant: str,
) -> None:
    resource, [slot] = await client.resource_with_slots(capacity=3)
    hold = await client.hold(resource.resource_id, [slot.slot_id])
    await settled(availability_app, db, tenant)
    dedupe_key = f"hold.created:{hold.hold_id}"
    duplicates_before = sample(availability_app, "holdfast_availability_duplicate_messages_total")

    # The state a relay leaves when it dies after appending to the stream but
    # before marking the row published: claimed, leased, not published.
    await db.execute(
        """
        UPDATE outbox SET published_at = NULL, attempts = attempts + 1,
                          next_attempt_at = now() + interval '300 milliseconds'
        WHERE dedupe_key = $1
        """,
        dedupe_key,
    )

    async def published_at() -> object:
        return await db.fetchval(
            "SELECT published_at FROM outbox WHERE dedupe_key = $1", dedupe_key
        )

    await eventually(published_at, lambda at: at is not None)
    await settled(availability_app, db, tenant)
    keys = await _stream_dedupe_keys(redis, availability_app, tenant)
    assert keys.count(dedupe_key) == 2  # delivered twice: at-least-once
    duplicates = sample(availability_app, "holdfast_availability_duplicate_messages_total")
    assert duplicates == duplicates_before + 1
    counts = await availability.slot_counts(resource.resource_id)
    assert counts[slot.slot_id] == SlotCounts(3, 2, 1, 0, True)  # and harmless


async def test_published_rows_are_pruned_after_the_retention(
    migrated_database: str, db: asyncpg.Pool, tenant: str
) -> None:
    async with own_booking_app(
        migrated_database,
        tenant,
        outbox_retention_seconds=1.0,
        outbox_prune_interval_seconds=0.1,
    ) as client:
        resource, [slot] = await client.resource_with_slots()
        await client.hold(resource.resource_id, [slot.slot_id])

        async def rows() -> int:
            count: int = await db.fetchval(
                "SELECT count(*) FROM outbox WHERE tenant_id = $1", tenant
            )
            return count

        assert await rows() == 2  # slots created, hold created
        await eventually(rows, lambda n: n == 0)


async def test_one_prune_pass_deletes_batch_after_batch_until_caught_up(
    own_database: str, tenant: str
) -> None:
    # More published rows than a batch (5000) twice over, all past the
    # retention: what two minutes of holds leave at several hundred a second.
    rows = 12_000
    async with asyncpg.create_pool(own_database, min_size=1, max_size=2) as db:
        await db.execute(
            """
            INSERT INTO outbox (topic, message_key, tenant_id, payload, dedupe_key,
                                published_at)
            SELECT 'availability', 'r', $1, '{}', $1 || ':' || i, now() - interval '2 hours'
            FROM generate_series(1, $2) i
            """,
            tenant,
            rows,
        )
        # One pass only (the next is an hour away): it must not stop at a batch.
        async with running_booking(own_database, outbox_prune_interval_seconds=3600) as app:

            async def left() -> int:
                count: int = await db.fetchval("SELECT count(*) FROM outbox")
                return count

            await eventually(left, lambda n: n == 0, within=30)
            assert sample(app, "holdfast_outbox_pruned_total") == rows
