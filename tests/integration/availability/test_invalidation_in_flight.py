"""A change shows as soon as its message reaches the replica, before the
shared cache's new generation is written, and nothing read in between is
kept: the window is held open by pausing the generation write."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from holdfast.contracts.availability.v1 import availability_pb2
from services.availability.cache import ResourceKey
from services.availability.reader import span_of
from services.availability.server import AvailabilityApp
from tests.support.availability import WINDOW, AvailabilityClient, SlotCounts, settled
from tests.support.booking import BookingClient
from tests.support.metrics import sample

MISSES = "holdfast_availability_cache_misses_total"
HITS = "holdfast_availability_cache_hits_total"


async def test_a_change_shows_while_its_invalidation_is_being_written(
    client: BookingClient,
    availability: AvailabilityClient,
    availability_app: AvailabilityApp,
    db: asyncpg.Pool,
    tenant: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = availability_app
    resource, [slot] = await client.resource_with_slots(capacity=5)
    rid, sid = resource.resource_id, slot.slot_id
    await settled(app, db, tenant)
    before = SlotCounts(5, 5, 0, 0, True)
    assert (await availability.slot_counts(rid))[sid] == before  # both levels filled

    arrived, go_on = asyncio.Event(), asyncio.Event()
    write_generations = app.shared.invalidate

    async def paused(resources: set[ResourceKey], applied_id: str) -> None:
        arrived.set()
        await go_on.wait()
        await write_generations(resources, applied_id)

    monkeypatch.setattr(app.shared, "invalidate", paused)
    await client.hold(rid, [sid], quantity=2)
    await asyncio.wait_for(arrived.wait(), 10)

    # Redis still serves the old answer under the key readers use...
    [shared] = await app.shared.get_many([(tenant, rid)], span_of(*WINDOW))
    assert shared.value is not None
    assert availability_pb2.ResourceAvailability.FromString(shared.value).slots[0].held == 0
    # ...yet the replica answers the change, from Postgres, and keeps none of it.
    misses = sample(app, MISSES, reason="invalidating")
    during = SlotCounts(5, 3, 2, 0, True)
    assert (await availability.slot_counts(rid))[sid] == during
    assert (await availability.slot_counts(rid))[sid] == during
    assert sample(app, MISSES, reason="invalidating") == misses + 2

    go_on.set()
    await settled(app, db, tenant)
    local_hits = sample(app, HITS, level="local")
    assert (await availability.slot_counts(rid))[sid] == during  # a miss: new generation
    assert (await availability.slot_counts(rid))[sid] == during  # then cached again
    assert sample(app, HITS, level="local") == local_hits + 1
