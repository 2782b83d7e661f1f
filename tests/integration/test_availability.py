"""Availability answers, and that every kind of change shows up in them."""

from __future__ import annotations

from tests.support.availability import AvailabilityClient, SlotCounts, eventually
from tests.support.booking import BookingClient


async def test_a_hold_shows_in_availability(
    client: BookingClient, availability: AvailabilityClient
) -> None:
    resource, [slot] = await client.resource_with_slots(capacity=5)
    before = await availability.slot_counts(resource.resource_id)
    assert before[slot.slot_id] == SlotCounts(5, 5, 0, 0, True)

    await client.hold(resource.resource_id, [slot.slot_id], quantity=2)

    after = await eventually(
        lambda: availability.slot_counts(resource.resource_id),
        lambda c: c[slot.slot_id].held == 2,
    )
    assert after[slot.slot_id] == SlotCounts(5, 3, 2, 0, True)
