"""Bad input: INVALID_ARGUMENT naming each bad field, and nothing written.
Other tenants' ids: NOT_FOUND, never their data."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import asyncpg
import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from holdfast.contracts.booking.v1 import booking_pb2, inventory_pb2
from holdfast.contracts.common.v1 import money_pb2, time_range_pb2
from holdfast.platform.proto_time import time_range
from tests.support.booking import BASE_TIME, BookingClient, error_of
from tests.support.db import count_rows

Build = Callable[[BookingClient, str, list[str]], Awaitable[Any]]


def hold_request(
    resource_id: str, slot_ids: list[str], **fields: Any
) -> booking_pb2.CreateHoldRequest:
    values: dict[str, Any] = {"resource_id": resource_id, "slot_ids": slot_ids, "quantity": 1}
    values.update(fields)
    return booking_pb2.CreateHoldRequest(**values)


def seconds(value: float) -> Duration:
    d = Duration()
    d.FromTimedelta(timedelta(seconds=value))
    return d


# (case id, request builder, the fields the error must name)
HOLD_CASES: list[
    tuple[str, Callable[[str, list[str]], booking_pb2.CreateHoldRequest], list[str]]
] = [
    ("zero quantity", lambda r, s: hold_request(r, s, quantity=0), ["quantity"]),
    ("negative quantity", lambda r, s: hold_request(r, s, quantity=-2), ["quantity"]),
    ("absurd quantity", lambda r, s: hold_request(r, s, quantity=10**6), ["quantity"]),
    ("no slots", lambda r, s: hold_request(r, []), ["slot_ids"]),
    ("malformed slot id", lambda r, s: hold_request(r, ["nope"]), ["slot_ids[0]"]),
    ("slot twice", lambda r, s: hold_request(r, [s[0], s[0]]), ["slot_ids"]),
    ("malformed resource", lambda r, s: hold_request("42", s), ["resource_id"]),
    ("missing resource", lambda r, s: hold_request("", s), ["resource_id"]),
    ("ttl too short", lambda r, s: hold_request(r, s, ttl=seconds(0.5)), ["ttl"]),
    ("ttl too long", lambda r, s: hold_request(r, s, ttl=seconds(86400)), ["ttl"]),
    (
        "long customer ref",
        lambda r, s: hold_request(r, s, customer_ref="x" * 201),
        ["customer_ref"],
    ),
    (
        "several at once",
        lambda r, s: hold_request("x", ["y"], quantity=0),
        ["resource_id", "slot_ids[0]", "quantity"],
    ),
]


@pytest.mark.parametrize(("case", "build", "fields"), HOLD_CASES, ids=[c[0] for c in HOLD_CASES])
async def test_bad_hold_requests_name_their_fields(
    client: BookingClient, db: asyncpg.Pool, case: str, build: Any, fields: list[str]
) -> None:
    resource, slots = await client.resource_with_slots(count=1)
    before = await count_rows(db, client.tenant)

    error = await error_of(
        client.booking.CreateHold(
            build(resource.resource_id, [slots[0].slot_id]), metadata=client.md
        )
    )

    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.domain == "booking.holdfast"
    assert [f for f, _ in error.field_violations] == fields
    assert await count_rows(db, client.tenant) == before


async def test_slots_of_another_resource_are_rejected(
    client: BookingClient, db: asyncpg.Pool
) -> None:
    first, (slot_a,) = await client.resource_with_slots()
    _, (slot_b,) = await client.resource_with_slots()
    before = await count_rows(db, client.tenant)

    error = await error_of(client.hold(first.resource_id, [slot_a.slot_id, slot_b.slot_id]))

    assert (error.code, error.reason) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "SLOT_OF_OTHER_RESOURCE",
    )
    assert await count_rows(db, client.tenant) == before


async def test_unknown_slot_is_not_found(client: BookingClient) -> None:
    resource, _ = await client.resource_with_slots()
    error = await error_of(client.hold(resource.resource_id, [str(uuid.uuid4())]))
    assert (error.code, error.reason) == (grpc.StatusCode.NOT_FOUND, "SLOT_NOT_FOUND")


def slot_spec(
    start_hours: int, end_hours: int, capacity: int | None = None
) -> inventory_pb2.SlotSpec:
    return inventory_pb2.SlotSpec(
        time_range=time_range(
            BASE_TIME + timedelta(hours=start_hours), BASE_TIME + timedelta(hours=end_hours)
        ),
        capacity=capacity,
    )


def beyond_year_9999() -> time_range_pb2.TimeRange:
    """A range whose end lies in the year 10000 (as a client can send it)."""
    return time_range_pb2.TimeRange(
        start_time=Timestamp(seconds=int(BASE_TIME.timestamp())),
        end_time=Timestamp(seconds=253_402_300_800),
    )


INVENTORY_CASES: list[tuple[str, Build, list[str]]] = [
    (
        "resource without anything",
        lambda c, r, s: c.inventory.CreateResource(
            inventory_pb2.CreateResourceRequest(), metadata=c.md
        ),
        ["name", "time_zone", "price", "price.currency_code"],
    ),
    (
        "resource with bad zone, currency and capacity",
        lambda c, r, s: c.inventory.CreateResource(
            inventory_pb2.CreateResourceRequest(
                name="x",
                time_zone="Mars/Olympus",
                price=money_pb2.Money(currency_code="eur", amount_minor=-1),
                default_capacity=-1,
            ),
            metadata=c.md,
        ),
        ["time_zone", "price.currency_code", "price.amount_minor", "default_capacity"],
    ),
    (
        "slot ending before it starts",
        lambda c, r, s: c.inventory.CreateSlots(
            inventory_pb2.CreateSlotsRequest(
                resource_id=r, slots=[slot_spec(5, 5), slot_spec(3, 2)]
            ),
            metadata=c.md,
        ),
        ["slots[0].time_range", "slots[1].time_range"],
    ),
    (
        # Past what a protobuf Timestamp may hold: a violation, never INTERNAL.
        "slot in the year 10000",
        lambda c, r, s: c.inventory.CreateSlots(
            inventory_pb2.CreateSlotsRequest(
                resource_id=r, slots=[inventory_pb2.SlotSpec(time_range=beyond_year_9999())]
            ),
            metadata=c.md,
        ),
        ["slots[0].time_range"],
    ),
    (
        "slots listed over the year 10000",
        lambda c, r, s: c.inventory.ListSlots(
            inventory_pb2.ListSlotsRequest(resource_id=r, time_range=beyond_year_9999()),
            metadata=c.md,
        ),
        ["time_range"],
    ),
    (
        "slot without times and negative capacity",
        lambda c, r, s: c.inventory.CreateSlots(
            inventory_pb2.CreateSlotsRequest(
                resource_id=r, slots=[inventory_pb2.SlotSpec(capacity=-3)]
            ),
            metadata=c.md,
        ),
        ["slots[0].time_range", "slots[0].capacity"],
    ),
    (
        "no slots",
        lambda c, r, s: c.inventory.CreateSlots(
            inventory_pb2.CreateSlotsRequest(resource_id=r), metadata=c.md
        ),
        ["slots"],
    ),
    (
        "negative capacity",
        lambda c, r, s: c.inventory.UpdateSlotCapacity(
            inventory_pb2.UpdateSlotCapacityRequest(slot_id=s[0], capacity=-1), metadata=c.md
        ),
        ["capacity"],
    ),
    (
        "malformed slot id",
        lambda c, r, s: c.inventory.CloseSlot(
            inventory_pb2.CloseSlotRequest(slot_id="slot-1"), metadata=c.md
        ),
        ["slot_id"],
    ),
    (
        "negative page size",
        lambda c, r, s: c.booking.ListBookings(
            booking_pb2.ListBookingsRequest(page_size=-1), metadata=c.md
        ),
        ["page_size"],
    ),
    (
        "forged page token",
        lambda c, r, s: c.inventory.ListResources(
            inventory_pb2.ListResourcesRequest(page_token="bm90IGEgdG9rZW4"), metadata=c.md
        ),
        ["page_token"],
    ),
    (
        "unspecified status filter",
        lambda c, r, s: c.booking.ListBookings(
            booking_pb2.ListBookingsRequest(statuses=[booking_pb2.HOLD_STATUS_UNSPECIFIED]),
            metadata=c.md,
        ),
        ["statuses[0]"],
    ),
    (
        "confirm without payment",
        lambda c, r, s: c.booking.ConfirmHold(
            booking_pb2.ConfirmHoldRequest(hold_id=str(uuid.uuid4())), metadata=c.md
        ),
        ["payment_ref"],
    ),
]


@pytest.mark.parametrize(
    ("case", "call", "fields"), INVENTORY_CASES, ids=[c[0] for c in INVENTORY_CASES]
)
async def test_bad_inventory_and_list_requests_name_their_fields(
    client: BookingClient, db: asyncpg.Pool, case: str, call: Build, fields: list[str]
) -> None:
    resource, slots = await client.resource_with_slots(count=1)
    before = await count_rows(db, client.tenant)

    error = await error_of(call(client, resource.resource_id, [s.slot_id for s in slots]))

    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in error.field_violations] == fields
    assert await count_rows(db, client.tenant) == before


async def test_capacity_never_drops_below_what_is_taken(client: BookingClient) -> None:
    resource, (slot,) = await client.resource_with_slots(capacity=5)
    await client.hold(resource.resource_id, [slot.slot_id], quantity=3)

    error = await error_of(
        client.inventory.UpdateSlotCapacity(
            inventory_pb2.UpdateSlotCapacityRequest(slot_id=slot.slot_id, capacity=2),
            metadata=client.md,
        )
    )
    lowered = await client.inventory.UpdateSlotCapacity(
        inventory_pb2.UpdateSlotCapacityRequest(slot_id=slot.slot_id, capacity=3),
        metadata=client.md,
    )

    assert (error.code, error.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "CAPACITY_BELOW_TAKEN",
    )
    assert (lowered.slot.capacity, lowered.slot.available) == (3, 0)


async def test_closed_slot_takes_no_holds_until_reopened(client: BookingClient) -> None:
    resource, (slot,) = await client.resource_with_slots(capacity=5)
    await client.inventory.CloseSlot(
        inventory_pb2.CloseSlotRequest(slot_id=slot.slot_id), metadata=client.md
    )

    error = await error_of(client.hold(resource.resource_id, [slot.slot_id]))
    await client.inventory.ReopenSlot(
        inventory_pb2.ReopenSlotRequest(slot_id=slot.slot_id), metadata=client.md
    )
    hold = await client.hold(resource.resource_id, [slot.slot_id])

    assert (error.code, error.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "SLOT_CLOSED")
    assert hold.status == booking_pb2.HOLD_STATUS_HELD


async def test_duplicate_slot_batch_writes_nothing(client: BookingClient, db: asyncpg.Pool) -> None:
    resource = await client.resource()
    await client.inventory.CreateSlots(
        inventory_pb2.CreateSlotsRequest(resource_id=resource.resource_id, slots=[slot_spec(0, 1)]),
        metadata=client.md,
    )
    before = await count_rows(db, client.tenant)

    error = await error_of(
        client.inventory.CreateSlots(
            inventory_pb2.CreateSlotsRequest(
                resource_id=resource.resource_id, slots=[slot_spec(1, 2), slot_spec(0, 1)]
            ),
            metadata=client.md,
        )
    )

    assert (error.code, error.reason) == (grpc.StatusCode.ALREADY_EXISTS, "SLOT_EXISTS")
    assert await count_rows(db, client.tenant) == before


async def test_calls_without_a_tenant_are_refused(client: BookingClient) -> None:
    missing = await error_of(client.booking.ListBookings(booking_pb2.ListBookingsRequest()))
    malformed = await error_of(
        client.booking.ListBookings(
            booking_pb2.ListBookingsRequest(), metadata=(("x-tenant-id", "Bad Tenant!"),)
        )
    )
    assert (missing.code, missing.reason) == (grpc.StatusCode.UNAUTHENTICATED, "TENANT_REQUIRED")
    assert (malformed.code, malformed.reason) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "TENANT_ID_MALFORMED",
    )


async def test_the_audit_log_names_the_calls_actor(client: BookingClient, db: asyncpg.Pool) -> None:
    resource, (slot,) = await client.resource_with_slots(capacity=3)
    hold = await client.hold(resource.resource_id, [slot.slot_id])
    await client.booking.ReleaseHold(
        booking_pb2.ReleaseHoldRequest(hold_id=hold.hold_id),
        metadata=(*client.md, ("x-actor", "api-key:abc123")),
    )
    actors = await db.fetch(
        "SELECT actor FROM audit_log WHERE entity_id = $1::uuid ORDER BY id", hold.hold_id
    )
    # The hold was made without an x-actor: the tenant itself is the actor.
    assert [r["actor"] for r in actors] == [f"tenant:{client.tenant}", "api-key:abc123"]


async def test_another_tenants_ids_are_not_found(client: BookingClient, db: asyncpg.Pool) -> None:
    owner = BookingClient(client.booking, client.inventory, f"{client.tenant}-owner")
    resource, (slot,) = await owner.resource_with_slots(capacity=3)
    hold = await owner.hold(resource.resource_id, [slot.slot_id])
    r, s, h = resource.resource_id, slot.slot_id, hold.hold_id
    b, i, md = client.booking, client.inventory, client.md
    owner_rows = await count_rows(db, owner.tenant)

    calls = {
        "GetResource": i.GetResource(inventory_pb2.GetResourceRequest(resource_id=r), metadata=md),
        "ListSlots": i.ListSlots(inventory_pb2.ListSlotsRequest(resource_id=r), metadata=md),
        "CreateSlots": i.CreateSlots(
            inventory_pb2.CreateSlotsRequest(resource_id=r, slots=[slot_spec(9, 10)]), metadata=md
        ),
        "UpdateSlotCapacity": i.UpdateSlotCapacity(
            inventory_pb2.UpdateSlotCapacityRequest(slot_id=s, capacity=9), metadata=md
        ),
        "CloseSlot": i.CloseSlot(inventory_pb2.CloseSlotRequest(slot_id=s), metadata=md),
        "ReopenSlot": i.ReopenSlot(inventory_pb2.ReopenSlotRequest(slot_id=s), metadata=md),
        "CreateHold": client.hold(r, [s]),
        "GetHold": b.GetHold(booking_pb2.GetHoldRequest(hold_id=h), metadata=md),
        "ReleaseHold": b.ReleaseHold(booking_pb2.ReleaseHoldRequest(hold_id=h), metadata=md),
        "ConfirmHold": b.ConfirmHold(
            booking_pb2.ConfirmHoldRequest(hold_id=h, payment_ref="pi_x"), metadata=md
        ),
        "CancelBooking": b.CancelBooking(
            booking_pb2.CancelBookingRequest(booking_id=h), metadata=md
        ),
        "GetBooking": b.GetBooking(booking_pb2.GetBookingRequest(booking_id=h), metadata=md),
    }
    for name, call in calls.items():
        error = await error_of(call)
        assert error.code == grpc.StatusCode.NOT_FOUND, name

    assert not (await i.ListResources(inventory_pb2.ListResourcesRequest(), metadata=md)).resources
    assert not (await b.ListBookings(booking_pb2.ListBookingsRequest(), metadata=md)).bookings
    assert await count_rows(db, owner.tenant) == owner_rows
    assert (await owner.slot(r, s)).held == 1
