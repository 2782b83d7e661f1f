"""Random sequences of window holds, releases, confirms, cancellations,
expiries, unit retirements and hour changes on a windowed resource, checked
after every step against a simple model: per unit, the buffered windows of
its live holds and bookings (hypothesis).

What the model says is free is held, on the unit it picks (the smallest
active unit that fits and is free, then by name); what it says is taken is
refused with SOLD_OUT; a window outside the day's hours is refused naming the
field; and the database's live unit_windows are the model's, row for row.
"""

from __future__ import annotations

import uuid
from datetime import time, timedelta
from typing import Any

import asyncpg
import grpc
from google.protobuf.duration_pb2 import Duration
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from holdfast.contracts.booking.v1 import booking_pb2, inventory_pb2
from holdfast.contracts.common.v1 import money_pb2
from holdfast.platform.grpc_errors import details_of
from holdfast.platform.proto_time import time_range
from holdfast.scheduling.intervals import Interval
from services.booking.server import BookingApp
from tests.support.booking import BookingClient, outcome
from tests.support.window_model import (
    BUFFER_AFTER,
    BUFFER_BEFORE,
    DAYS,
    DURATIONS,
    OUTSIDE_HOURS,
    PAYMENTS,
    SOLD_OUT,
    SPECIAL_HOURS,
    UNIT_NAMES,
    WEEKLY,
    ZONE,
    Model,
    ModelHold,
    ModelUnit,
    window_of,
)


def _minutes(n: int) -> Duration:
    duration = Duration()
    duration.FromTimedelta(timedelta(minutes=n))
    return duration


windows = st.tuples(
    st.integers(0, len(DAYS) - 1),
    st.integers(0, 27),  # 09:00, 09:30, ... 22:30 local, some outside the hours
    st.sampled_from(DURATIONS),
)
# Dinner on the first day: windows that mostly lie within the hours and collide.
dinners = st.tuples(st.just(0), st.integers(18, 22), st.sampled_from(DURATIONS))
steps = st.one_of(
    st.tuples(st.just("hold"), windows, st.integers(1, 6)),
    st.tuples(st.just("hold"), dinners, st.integers(1, 4)),
    st.tuples(st.just("hold"), dinners, st.integers(1, 4)),
    st.tuples(st.just("hold_on"), windows, st.integers(0, len(UNIT_NAMES) - 1)),
    st.tuples(st.just("release"), st.integers(0, 50)),
    st.tuples(st.just("confirm"), st.integers(0, 50), st.sampled_from(PAYMENTS)),
    st.tuples(st.just("cancel"), st.integers(0, 50)),
    st.tuples(st.just("expire"), st.integers(0, 50)),
    st.tuples(st.just("retire"), st.integers(0, len(UNIT_NAMES) - 1)),
    st.tuples(st.just("restore"), st.integers(0, len(UNIT_NAMES) - 1)),
    st.tuples(
        st.just("hours"), st.integers(0, len(DAYS) - 1), st.integers(-1, len(SPECIAL_HOURS) - 1)
    ),
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    sizes=st.lists(st.integers(1, 6), min_size=len(UNIT_NAMES), max_size=len(UNIT_NAMES)),
    program=st.lists(steps, min_size=5, max_size=30),
)
async def test_random_window_programs_match_the_model(
    booking_app: BookingApp,
    channel: grpc.aio.Channel,
    db: asyncpg.Pool,
    sizes: list[int],
    program: list[tuple[Any, ...]],
) -> None:
    client = BookingClient.on(channel, f"wm-{uuid.uuid4().hex[:12]}")
    model = Model([ModelUnit(name, size) for name, size in zip(UNIT_NAMES, sizes, strict=True)])
    resource_id = await _windowed_resource(client, model)

    for step in program:
        kind = step[0]
        if kind in ("hold", "hold_on"):
            await _hold(client, model, resource_id, step)
        elif kind in ("retire", "restore"):
            if not await _on_a_unit(client, model, step):
                continue
        elif kind == "hours":
            await _set_hours(client, model, resource_id, step)
        elif not await _on_a_hold(booking_app, client, db, model, step):
            continue
        await _assert_matches(db, model, resource_id, step)


async def _windowed_resource(client: BookingClient, model: Model) -> str:
    inv, md = client.inventory, client.md
    created = await inv.CreateResource(
        inventory_pb2.CreateResourceRequest(
            name="Model bistro",
            time_zone=ZONE.key,
            price=money_pb2.Money(currency_code="EUR", amount_minor=1000),
            kind=inventory_pb2.RESOURCE_KIND_WINDOWED,
            window_rules=inventory_pb2.WindowRules(
                min_duration=_minutes(60),
                max_duration=_minutes(180),
                granularity=_minutes(30),
                buffer_before=_minutes(15),
                buffer_after=_minutes(30),
            ),
        ),
        metadata=md,
    )
    resource_id: str = created.resource.resource_id
    for unit in model.units:
        made = await inv.CreateUnit(
            inventory_pb2.CreateUnitRequest(
                resource_id=resource_id, name=unit.name, size=unit.size
            ),
            metadata=md,
        )
        unit.unit_id = made.unit.unit_id
    await inv.SetWeeklyHours(
        inventory_pb2.SetWeeklyHoursRequest(
            resource_id=resource_id,
            weekly=[
                inventory_pb2.WeeklyHours(weekday=day, ranges=_ranges(WEEKLY))
                for day in inventory_pb2.Weekday.values()[1:]
            ],
        ),
        metadata=md,
    )
    return resource_id


def _ranges(ranges: tuple[tuple[time, time], ...]) -> list[inventory_pb2.OpeningRange]:
    return [
        inventory_pb2.OpeningRange(opens=o.strftime("%H:%M"), closes=c.strftime("%H:%M"))
        for o, c in ranges
    ]


async def _hold(
    client: BookingClient, model: Model, resource_id: str, step: tuple[Any, ...]
) -> None:
    """A hold for a party (the model picks the unit) or on a named unit."""
    day, window = window_of(step[1])
    guarded = Interval(window.start - BUFFER_BEFORE, window.end + BUFFER_AFTER)
    request = booking_pb2.CreateHoldRequest(
        resource_id=resource_id, window=time_range(window.start, window.end), customer_ref="model"
    )
    if step[0] == "hold":
        party = int(step[2])
        request.party_size = party
        unit = model.pick(party, guarded)
        if not model.within_hours(day, window):
            expected = OUTSIDE_HOURS
        elif unit is not None:
            expected = "OK"
        elif model.fits_any(party):
            expected = SOLD_OUT
        elif not any(u.active for u in model.units):
            expected = "FAILED_PRECONDITION:NO_UNIT_FITS"
        else:  # larger than every active unit: the request's fault
            expected = "INVALID_ARGUMENT:party_size"
    else:
        unit = model.units[int(step[2])]
        request.unit_id = unit.unit_id
        if not model.within_hours(day, window):
            expected = OUTSIDE_HOURS
        elif not unit.active:
            expected = "FAILED_PRECONDITION:UNIT_RETIRED"
        else:
            expected = "OK" if model.free_on(unit, guarded) else SOLD_OUT
    try:
        hold = (await client.booking.CreateHold(request, metadata=client.md)).hold
        got = "OK"
    except grpc.aio.AioRpcError as error:
        details = details_of(error)
        got = f"{details.code.name}:{details.reason}"
        if details.code is grpc.StatusCode.INVALID_ARGUMENT:
            got = "INVALID_ARGUMENT:" + ",".join(name for name, _ in details.field_violations)
    event(f"{step[0]}: {got}")  # --hypothesis-show-statistics: every answer is reached
    assert got == expected, step
    if got == "OK":
        assert unit is not None
        assert hold.window.unit_name == unit.name, step
        assert hold.window.unit_id == unit.unit_id, step
        assert hold.quantity == (request.party_size or hold.quantity), step
        model.holds.append(ModelHold(hold.hold_id, unit.name, window))


async def _on_a_hold(
    booking_app: BookingApp,
    client: BookingClient,
    db: asyncpg.Pool,
    model: Model,
    step: tuple[Any, ...],
) -> bool:
    """Releases, confirms, cancels or expires one of the model's holds; False
    when the step does not apply."""
    if not model.holds:
        return False
    kind, mh = step[0], model.holds[int(step[1]) % len(model.holds)]
    b, md, h = client.booking, client.md, mh.hold_id
    if kind == "release":
        if mh.status == "HELD":
            mh.status, expected = "RELEASED", "OK"
        elif mh.status in ("RELEASED", "EXPIRED"):
            expected = "OK"
        else:
            expected = "FAILED_PRECONDITION:HOLD_NOT_RELEASABLE"
        got = await outcome(b.ReleaseHold(booking_pb2.ReleaseHoldRequest(hold_id=h), metadata=md))
    elif kind == "confirm":
        ref = str(step[2])
        if mh.status == "HELD":
            mh.status, mh.payment_ref, expected = "CONFIRMED", ref, "OK"
        elif mh.status == "CONFIRMED":
            expected = "OK" if ref == mh.payment_ref else "FAILED_PRECONDITION:ALREADY_CONFIRMED"
        elif mh.status == "CANCELLED":
            expected = "FAILED_PRECONDITION:BOOKING_CLOSED"
        else:  # a late payment: what it may take again is not this model's question
            return False
        got = await outcome(
            b.ConfirmHold(booking_pb2.ConfirmHoldRequest(hold_id=h, payment_ref=ref), metadata=md)
        )
    elif kind == "cancel":
        if mh.status == "CONFIRMED":
            mh.status, expected = "CANCELLED", "OK"
        elif mh.status == "CANCELLED":
            expected = "OK"
        else:
            expected = "FAILED_PRECONDITION:BOOKING_NOT_CANCELLABLE"
        got = await outcome(
            b.CancelBooking(booking_pb2.CancelBookingRequest(booking_id=h), metadata=md)
        )
    else:
        if mh.status != "HELD":
            return False
        await db.execute(
            "UPDATE holds SET expires_at = now() - interval '1 second' WHERE id = $1::uuid", h
        )
        assert booking_app.sweeper is not None
        await booking_app.sweeper.sweep_once()
        mh.status, expected, got = "EXPIRED", "OK", "OK"
    assert got == expected, step
    return True


async def _on_a_unit(client: BookingClient, model: Model, step: tuple[Any, ...]) -> bool:
    """Retires an active unit or restores a retired one; its holds stay."""
    unit = model.units[int(step[1])]
    if (step[0] == "retire") != unit.active:
        return False
    inv, md = client.inventory, client.md
    if step[0] == "retire":
        changed = await inv.RetireUnit(
            inventory_pb2.RetireUnitRequest(unit_id=unit.unit_id), metadata=md
        )
    else:
        changed = await inv.RestoreUnit(
            inventory_pb2.RestoreUnitRequest(unit_id=unit.unit_id), metadata=md
        )
    unit.active = not unit.active
    assert changed.unit.active == unit.active, step
    return True


async def _set_hours(
    client: BookingClient, model: Model, resource_id: str, step: tuple[Any, ...]
) -> None:
    """Gives a day special hours (or closes it), or back its weekly hours;
    holds already made stay."""
    day, choice = DAYS[int(step[1])], int(step[2])
    inv, md = client.inventory, client.md
    if choice < 0:
        await inv.ClearHoursException(
            inventory_pb2.ClearHoursExceptionRequest(resource_id=resource_id, date=day.isoformat()),
            metadata=md,
        )
        model.special.pop(day, None)
        return
    ranges = SPECIAL_HOURS[choice]
    await inv.SetHoursException(
        inventory_pb2.SetHoursExceptionRequest(
            resource_id=resource_id,
            exception=inventory_pb2.HoursException(date=day.isoformat(), ranges=_ranges(ranges)),
        ),
        metadata=md,
    )
    model.special[day] = ranges


async def _assert_matches(
    db: asyncpg.Pool, model: Model, resource_id: str, step: tuple[Any, ...]
) -> None:
    rows = await db.fetch(
        """
        SELECT u.name, w.starts_at, w.ends_at, w.guard_from, w.guard_until
        FROM unit_windows w JOIN resource_units u ON u.id = w.unit_id
        WHERE w.resource_id = $1::uuid AND w.live
        """,
        resource_id,
    )
    live = {tuple(row.values()) for row in rows}
    assert len(live) == len(rows)
    assert live == model.live_windows(), step
    if model.holds:
        statuses = {
            str(r["id"]): r["status"]
            for r in await db.fetch(
                "SELECT id, status FROM holds WHERE id = ANY($1::uuid[])",
                [h.hold_id for h in model.holds],
            )
        }
        assert statuses == {h.hold_id: h.status for h in model.holds}, step
