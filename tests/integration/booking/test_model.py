"""Random sequences of every state change, checked step by step against a
simple model of what the booking service must do (hypothesis)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg
import grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from holdfast.contracts.booking.v1 import booking_pb2, inventory_pb2
from holdfast.platform.grpc_errors import details_of
from services.booking.server import BookingApp
from tests.support.booking import BASE_TIME, BookingClient, outcome

SLOTS = 3
PAYMENTS = ("pi_a", "pi_b")


@dataclass
class ModelSlot:
    capacity: int
    held: int = 0
    booked: int = 0
    closed: bool = False

    @property
    def free(self) -> int:
        return self.capacity - self.held - self.booked


@dataclass
class ModelHold:
    slots: tuple[int, ...]
    quantity: int
    status: str = "HELD"
    payment_ref: str = ""
    hold_id: str = field(default="")


class Model:
    def __init__(self, capacities: list[int]) -> None:
        self.slots = [ModelSlot(c) for c in capacities]
        self.holds: list[ModelHold] = []

    def move(self, hold: ModelHold, held: int, booked: int) -> None:
        for i in hold.slots:
            self.slots[i].held += held * hold.quantity
            self.slots[i].booked += booked * hold.quantity

    def create(self, slots: tuple[int, ...], quantity: int) -> str:
        chosen = [self.slots[i] for i in slots]
        if any(s.closed for s in chosen):
            return "FAILED_PRECONDITION:SLOT_CLOSED"
        if any(s.free < quantity for s in chosen):
            return "FAILED_PRECONDITION:SOLD_OUT"
        return "OK"

    def release(self, hold: ModelHold) -> str:
        if hold.status == "HELD":
            self.move(hold, -1, 0)
            hold.status = "RELEASED"
        elif hold.status not in ("RELEASED", "EXPIRED"):
            return "FAILED_PRECONDITION:HOLD_NOT_RELEASABLE"
        return "OK"

    def confirm(self, hold: ModelHold, payment_ref: str) -> str:
        if hold.status == "CONFIRMED":
            return (
                "OK" if hold.payment_ref == payment_ref else "FAILED_PRECONDITION:ALREADY_CONFIRMED"
            )
        if hold.status == "CANCELLED":
            return "FAILED_PRECONDITION:BOOKING_CLOSED"
        if hold.status == "HELD":
            self.move(hold, -1, 1)
        else:  # released or expired: a late payment takes the capacity again if it can
            chosen = [self.slots[i] for i in hold.slots]
            if any(s.closed or s.free < hold.quantity for s in chosen):
                return "FAILED_PRECONDITION:HOLD_EXPIRED_NO_CAPACITY"
            self.move(hold, 0, 1)
        hold.status, hold.payment_ref = "CONFIRMED", payment_ref
        return "OK"

    def cancel(self, hold: ModelHold) -> str:
        if hold.status == "CONFIRMED":
            self.move(hold, 0, -1)
            hold.status = "CANCELLED"
        elif hold.status != "CANCELLED":
            return "FAILED_PRECONDITION:BOOKING_NOT_CANCELLABLE"
        return "OK"

    def set_capacity(self, slot: int, capacity: int) -> str:
        s = self.slots[slot]
        if capacity < s.held + s.booked:
            return "FAILED_PRECONDITION:CAPACITY_BELOW_TAKEN"
        s.capacity = capacity
        return "OK"


slot_sets = st.lists(st.integers(0, SLOTS - 1), min_size=1, max_size=SLOTS, unique=True)
steps = st.one_of(
    st.tuples(st.just("create"), slot_sets, st.integers(1, 3)),
    st.tuples(st.just("release"), st.integers(0, 50)),
    st.tuples(st.just("confirm"), st.integers(0, 50), st.sampled_from(PAYMENTS)),
    st.tuples(st.just("cancel"), st.integers(0, 50)),
    st.tuples(st.just("expire"), st.integers(0, 50)),
    st.tuples(st.just("capacity"), st.integers(0, SLOTS - 1), st.integers(0, 6)),
    st.tuples(st.just("close"), st.integers(0, SLOTS - 1)),
    st.tuples(st.just("reopen"), st.integers(0, SLOTS - 1)),
)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    capacities=st.lists(st.integers(1, 4), min_size=SLOTS, max_size=SLOTS),
    program=st.lists(steps, min_size=1, max_size=30),
)
async def test_random_programs_match_the_model(
    booking_app: BookingApp,
    channel: grpc.aio.Channel,
    db: asyncpg.Pool,
    capacities: list[int],
    program: list[tuple[Any, ...]],
) -> None:
    client = BookingClient.on(channel, f"m-{uuid.uuid4().hex[:12]}")
    resource = await client.resource()
    slots = []
    for i, capacity in enumerate(capacities):
        slots += await client.slots(
            resource.resource_id, capacity=capacity, start=BASE_TIME + timedelta(hours=i)
        )
    model = Model(capacities)

    for step in program:
        kind = step[0]
        if kind == "create":
            await _create(client, model, resource.resource_id, slots, step)
        elif kind in ("release", "confirm", "cancel", "expire"):
            if not await _on_a_hold(booking_app, client, db, model, step):
                continue
        else:
            await _on_a_slot(client, model, slots, step)

        await _assert_matches(db, model, [s.slot_id for s in slots], step)


async def _create(
    client: BookingClient,
    model: Model,
    resource_id: str,
    slots: list[inventory_pb2.Slot],
    step: tuple[Any, ...],
) -> None:
    chosen, quantity = tuple(step[1]), int(step[2])
    expected = model.create(chosen, quantity)
    hold_slots = [slots[i].slot_id for i in chosen]
    try:
        hold = await client.hold(resource_id, hold_slots, quantity)
        got = "OK"
    except grpc.aio.AioRpcError as error:
        details = details_of(error)
        got = f"{details.code.name}:{details.reason}"
    assert got == expected, step
    if got == "OK":
        model.holds.append(ModelHold(chosen, quantity, hold_id=hold.hold_id))
        model.move(model.holds[-1], 1, 0)


async def _on_a_hold(
    booking_app: BookingApp,
    client: BookingClient,
    db: asyncpg.Pool,
    model: Model,
    step: tuple[Any, ...],
) -> bool:
    """Releases, confirms, cancels or expires one of the model's holds;
    False when the step does not apply (no hold yet, or none to expire)."""
    kind = step[0]
    b, md = client.booking, client.md
    if not model.holds:
        return False
    mh = model.holds[int(step[1]) % len(model.holds)]
    h = mh.hold_id
    if kind == "release":
        expected = model.release(mh)
        got = await outcome(b.ReleaseHold(booking_pb2.ReleaseHoldRequest(hold_id=h), metadata=md))
    elif kind == "confirm":
        ref = str(step[2])
        expected = model.confirm(mh, ref)
        got = await outcome(
            b.ConfirmHold(booking_pb2.ConfirmHoldRequest(hold_id=h, payment_ref=ref), metadata=md)
        )
    elif kind == "cancel":
        expected = model.cancel(mh)
        got = await outcome(
            b.CancelBooking(booking_pb2.CancelBookingRequest(booking_id=h), metadata=md)
        )
    else:
        if mh.status != "HELD":
            return False
        await db.execute(
            "UPDATE holds SET expires_at = now() - interval '1 second' WHERE id = $1::uuid",
            h,
        )
        assert booking_app.sweeper is not None
        await booking_app.sweeper.sweep_once()
        model.move(mh, -1, 0)
        mh.status, expected, got = "EXPIRED", "OK", "OK"
    assert got == expected, step
    return True


async def _on_a_slot(
    client: BookingClient, model: Model, slots: list[inventory_pb2.Slot], step: tuple[Any, ...]
) -> None:
    """Changes a slot's capacity, closes it or reopens it."""
    kind = step[0]
    inv, md = client.inventory, client.md
    slot = slots[int(step[1])]
    if kind == "capacity":
        capacity = int(step[2])
        expected = model.set_capacity(int(step[1]), capacity)
        got = await outcome(
            inv.UpdateSlotCapacity(
                inventory_pb2.UpdateSlotCapacityRequest(slot_id=slot.slot_id, capacity=capacity),
                metadata=md,
            )
        )
        assert got == expected, step
    elif kind == "close":
        await inv.CloseSlot(inventory_pb2.CloseSlotRequest(slot_id=slot.slot_id), metadata=md)
        model.slots[int(step[1])].closed = True
    else:
        await inv.ReopenSlot(inventory_pb2.ReopenSlotRequest(slot_id=slot.slot_id), metadata=md)
        model.slots[int(step[1])].closed = False


async def _assert_matches(
    db: asyncpg.Pool, model: Model, slot_ids: list[str], step: tuple[Any, ...]
) -> None:
    rows = {
        str(r["id"]): r
        for r in await db.fetch(
            "SELECT id, capacity, held, booked, closed FROM slots WHERE id = ANY($1::uuid[])",
            slot_ids,
        )
    }
    for slot_id, expected in zip(slot_ids, model.slots, strict=True):
        row = rows[slot_id]
        assert row["held"] + row["booked"] <= row["capacity"]
        actual = (row["capacity"], row["held"], row["booked"], row["closed"])
        assert actual == (expected.capacity, expected.held, expected.booked, expected.closed), step
    if model.holds:
        statuses = {
            str(r["id"]): r["status"]
            for r in await db.fetch(
                "SELECT id, status FROM holds WHERE id = ANY($1::uuid[])",
                [h.hold_id for h in model.holds],
            )
        }
        assert statuses == {h.hold_id: h.status for h in model.holds}, step
