"""The stale-write race, reproduced step by step.

A reader misses the cache and reads Postgres; a hold changes the slot and its
invalidation is applied; only then does the reader write what it read back to
the cache. The versioned keys must make that write harmless. The second test
is the control: the same stale value written under the *current* version (what
a cache without versions would do) is served, so the interleaving is real and
the version check is what protects against it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from holdfast.contracts.availability.v1 import availability_pb2
from services.availability.reader import AvailabilityReader, span_of
from services.availability.repository import AvailabilityRepository
from services.availability.server import AvailabilityApp
from tests.support.availability import WINDOW, AvailabilityClient, SlotCounts, settled
from tests.support.booking import BookingClient
from tests.support.metrics import sample


class PausingRepository(AvailabilityRepository):
    """Reads Postgres for real, then waits to be let go before answering."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool)
        self.has_read = asyncio.Event()
        self.go_on = asyncio.Event()

    async def read_slots(
        self,
        tenant_id: str,
        resource_ids: Sequence[uuid.UUID],
        start: datetime,
        end: datetime,
        max_slots: int,
    ) -> dict[uuid.UUID, list[asyncpg.Record]]:
        rows = await super().read_slots(tenant_id, resource_ids, start, end, max_slots)
        self.has_read.set()
        await self.go_on.wait()
        return rows


async def _read_before_and_write_after_a_hold(
    app: AvailabilityApp, client: BookingClient, db: asyncpg.Pool, tenant: str
) -> tuple[str, str, availability_pb2.ResourceAvailability]:
    """Runs the interleaving; returns the resource, slot and the stale answer."""
    resource, [slot] = await client.resource_with_slots(capacity=5)
    await settled(app, db, tenant)
    assert app.pool is not None
    paused = PausingRepository(app.pool)
    slow = AvailabilityReader(
        paused, app.shared, app.local, app.metrics, max_slots=5000, cache_live=lambda: True
    )

    reading = asyncio.create_task(slow.read(tenant, [uuid.UUID(resource.resource_id)], *WINDOW))
    await paused.has_read.wait()  # it has read Postgres and holds the old numbers
    await client.hold(resource.resource_id, [slot.slot_id], quantity=2)
    await settled(app, db, tenant)  # the hold's invalidation has been applied
    paused.go_on.set()  # now it writes what it read back to both cache levels
    [stale] = await reading
    return resource.resource_id, slot.slot_id, stale


async def test_a_slow_reader_cannot_write_back_what_an_invalidation_dropped(
    client: BookingClient,
    availability: AvailabilityClient,
    availability_app: AvailabilityApp,
    db: asyncpg.Pool,
    tenant: str,
) -> None:
    app = availability_app
    rid, sid, stale = await _read_before_and_write_after_a_hold(app, client, db, tenant)
    assert stale.slots[0].held == 0  # it really read before the hold

    hits = sample(app, "holdfast_availability_cache_hits_total", level="local")
    first = await availability.slot_counts(rid)
    second = await availability.slot_counts(rid)

    assert first[sid] == second[sid] == SlotCounts(5, 3, 2, 0, True)
    # The second answer came from the cache, so the cache holds the new numbers.
    assert sample(app, "holdfast_availability_cache_hits_total", level="local") == hits + 1
    # And nothing stale sits in Redis under the key readers use now.
    [shared] = await app.shared.get_many([(tenant, rid)], span_of(*WINDOW))
    assert shared.value is not None
    assert availability_pb2.ResourceAvailability.FromString(shared.value).slots[0].held == 2


async def test_control_without_versions_the_stale_value_would_be_served(
    client: BookingClient,
    availability: AvailabilityClient,
    availability_app: AvailabilityApp,
    db: asyncpg.Pool,
    tenant: str,
) -> None:
    app = availability_app
    rid, sid, stale = await _read_before_and_write_after_a_hold(app, client, db, tenant)

    # What a cache without versions does: write under whatever key is current.
    key = (tenant, rid)
    [current] = await app.shared.get_many([key], span_of(*WINDOW))
    await app.shared.put_many([(key, current, stale.SerializeToString())], span_of(*WINDOW))
    app.local.clear()  # so the answer comes from Redis

    served = await availability.slot_counts(rid)
    assert served[sid] == SlotCounts(5, 5, 0, 0, True)  # stale: the hold is invisible
