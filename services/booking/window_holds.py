"""Holds on windowed resources: the decisions of a window hold's transaction.

A window hold reads its resource (rules, hours, units) and the windows taken
near it without locks, refuses what the rules or hours refuse, then, in one
transaction, writes the hold and puts its window on the first free unit that
fits, best first (`holdfast.scheduling.starts.fitting`). The database's
exclusion constraint is the judge: a unit it finds taken (a race lost) is
SOLD_OUT for that unit, and the next one is tried. A unit taken only by holds
that lapsed unswept gets them expired, in the same transaction, and is tried
again: a late sweep never blocks a sale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TypeVar

from holdfast.platform.errors import (
    DomainError,
    FieldViolation,
    failed_precondition,
    invalid_argument,
    not_found,
)
from holdfast.scheduling.hours import OpeningHours
from holdfast.scheduling.intervals import Interval, overlaps_any
from holdfast.scheduling.rules import WindowRules, buffered, window_problem
from holdfast.scheduling.starts import Unit, fitting
from holdfast.scheduling.stored import guard_seconds, guarded_interval
from services.booking import rules
from services.booking.domain import (
    Hold,
    HoldRequest,
    HoldStatus,
    HoldWindow,
    ResourceKind,
    ResourceUnit,
    WindowHoldRequest,
    WindowSetup,
)
from services.booking.idempotency import IdempotentCall
from services.booking.repository import Transaction
from services.booking.reservation_base import ReservationBase

Response = TypeVar("Response")

# What the database's refusal of one unit is called; the next unit may do.
_UNIT_REFUSALS = ("SOLD_OUT", "WINDOW_NOT_PLACED")


def _invalid(field: str, description: str) -> DomainError:
    return invalid_argument([FieldViolation(field, description)])


def _as_violation(problem: str) -> DomainError:
    """`rules.window_problem`'s "field: reason" as INVALID_ARGUMENT on the field."""
    field, _, description = problem.partition(": ")
    return _invalid(field, description)


def check_setup(setup: WindowSetup | None, request: WindowHoldRequest) -> WindowRules:
    """The rules of the resource a window hold asks for, or why there are none."""
    resource_id = str(request.resource_id)
    if setup is None:
        raise not_found("resource", resource_id)
    if setup.kind is not ResourceKind.WINDOWED:
        raise _invalid(
            "window",
            f"resource {resource_id} is sold in slots: hold them with slot_ids and quantity",
        )
    if setup.rules is None:  # pragma: no cover - a resource is made windowed with its rules
        raise failed_precondition(
            "WINDOW_RULES_MISSING",
            f"resource {resource_id} has no window rules yet",
            {"resource_id": resource_id},
        )
    return setup.rules


def stored_guard(window: Interval, rules: WindowRules) -> Interval:
    """The buffered window as the database will store it (whole seconds,
    rounded outwards), or INVALID_ARGUMENT when it cannot be stored."""
    try:
        return guarded_interval(*guard_seconds(buffered(window, rules)))
    except (ValueError, OverflowError):
        raise _invalid("window", "must lie between 1970 and 2106 UTC, buffers included") from None


def check_window(rules: WindowRules, hours: OpeningHours, window: Interval, now: datetime) -> None:
    """Refuses a window the rules or hours refuse: INVALID_ARGUMENT naming the
    field, except a window only the lead time refuses (the clock's fault,
    not the request's): FAILED_PRECONDITION WINDOW_TOO_SOON."""
    problem = window_problem(rules, hours, window, now)
    if problem is None:
        return
    if window.start >= now + rules.lead_time:
        raise _as_violation(problem)
    try:  # what the request's own fault would be, with the lead time met
        own = window_problem(rules, hours, window, window.start - rules.lead_time)
    except OverflowError:  # pragma: no cover - a lead time of millennia
        own = None
    if own is not None:
        raise _as_violation(own)
    raise failed_precondition(
        "WINDOW_TOO_SOON",
        f"the window starts within the lead time of {rules.lead_time}",
        {"lead_time_minutes": str(rules.lead_time // timedelta(minutes=1))},
    )


def candidate_units(
    request: WindowHoldRequest, units: Sequence[ResourceUnit]
) -> tuple[list[ResourceUnit], int]:
    """The units the hold may go to, best first, and its quantity (the party
    size; without one, the named unit's size: the unit is taken whole)."""
    if request.unit_id is not None:
        unit = next((u for u in units if u.id == request.unit_id), None)
        if unit is None:
            raise not_found("unit", str(request.unit_id))
        if not unit.active:
            raise failed_precondition(
                "UNIT_RETIRED", f"unit {unit.name} is retired", {"unit_id": str(unit.id)}
            )
        if request.party_size is not None and request.party_size > unit.size:
            raise _invalid("party_size", f"larger than unit {unit.name}, which seats {unit.size}")
        return [unit], request.party_size or unit.size
    party = request.party_size
    assert party is not None, "the handler asks for a party size or a unit"
    by_name = {u.name: u for u in units}
    fits = fitting((Unit(u.name, u.size, u.active) for u in units), party)
    if fits:
        return [by_name[u.name] for u in fits], party
    largest = max((u.size for u in units if u.active), default=0)
    if largest == 0:
        raise failed_precondition(
            "NO_UNIT_FITS",
            f"resource {request.resource_id} has no active unit",
            {"resource_id": str(request.resource_id)},
        )
    raise _invalid("party_size", f"larger than every unit: the largest seats {largest}")


def window_total(setup: WindowSetup, window: Interval) -> int:
    """The resource's price once per started price period of the window, or
    once for the booking when the price has no period."""
    if not setup.price_period:
        return setup.price_minor
    return setup.price_minor * math.ceil(window.duration / setup.price_period)


def no_free_unit(
    request: WindowHoldRequest, candidates: Sequence[ResourceUnit], quantity: int, guarded: Interval
) -> DomainError:
    """SOLD_OUT: no unit that fits (or not the one named) is free for the window."""
    window = request.window
    named = request.unit_id is not None
    who = f"unit {candidates[0].name}" if named else f"any unit that seats {quantity}"
    metadata = {
        "window_start": window.start.isoformat(),
        "window_end": window.end.isoformat(),
        "guarded_start": guarded.start.isoformat(),
        "guarded_end": guarded.end.isoformat(),
        "party_size": str(quantity),
    }
    if named:
        metadata |= {"unit_id": str(candidates[0].id), "unit_name": candidates[0].name}
    return failed_precondition(
        "SOLD_OUT",
        f"the window {window.start.isoformat()} to {window.end.isoformat()} is taken on {who}"
        " (buffers included)",
        metadata,
    )


class WindowHolds(ReservationBase):
    """The window side of the reservation transactions."""

    async def _create_window_hold(
        self,
        tenant_id: str,
        request: WindowHoldRequest,
        call: IdempotentCall[Hold, Response],
        actor: str,
    ) -> tuple[Response, str]:
        setup = await self._repo.window_setup(tenant_id, request.resource_id, request.window)
        rules = check_setup(setup, request)
        assert setup is not None
        assert setup.hours is not None
        guarded = stored_guard(request.window, rules)
        check_window(rules, setup.hours, request.window, setup.now)
        candidates, quantity = candidate_units(request, setup.units)
        # Units taken by live windows are skipped without queueing for them
        # (what keeps a hot window fast); windows of lapsed holds are not
        # counted, since the transaction reclaims them.
        busy = setup.busy
        free = [u for u in candidates if not overlaps_any(busy.get(u.name, ()), guarded)]
        if not free:
            # The first request of this id may be what took the window.
            replayed = await call.seen(self._repo, tenant_id)
            if replayed is not None:
                return replayed, "replayed"
            raise no_free_unit(request, candidates, quantity, guarded)

        async with self._repo.transaction(tenant_id, actor) as tx:
            replayed = await call.claim(tx)
            if replayed is not None:
                return replayed, "replayed"
            hold = await tx.insert_window_hold(
                request.resource_id,
                quantity,
                request.customer_ref,
                setup.currency,
                window_total(setup, request.window),
                request.ttl,
            )
            unit = await self._place_on_first_free(tx, hold, free, request, guarded)
            placed = HoldWindow(request.window, unit.id, unit.name, guarded)
            hold = replace(hold, window=placed)
            response, stored = call.respond(hold)
            await tx.record_window_hold(hold, placed, call.key, stored)
        return response, "placed"

    async def _place_on_first_free(
        self,
        tx: Transaction,
        hold: Hold,
        units: Sequence[ResourceUnit],
        request: WindowHoldRequest,
        guarded: Interval,
    ) -> ResourceUnit:
        """Puts the hold's window on the first of `units` the database takes."""
        refused: DomainError | None = None
        for unit in units:
            try:
                await self._place_or_reclaim(tx, hold, unit, request.window, guarded)
                return unit
            except DomainError as error:
                if error.reason not in _UNIT_REFUSALS:
                    raise
                refused = error
        if request.unit_id is not None and refused is not None:
            if refused.reason == "SOLD_OUT":
                raise refused  # names the unit
            raise failed_precondition(
                "UNIT_RETIRED", "the unit asked for was retired", {"unit_id": str(request.unit_id)}
            )
        raise no_free_unit(request, units, hold.quantity, guarded)

    async def _place_or_reclaim(
        self,
        tx: Transaction,
        hold: Hold,
        unit: ResourceUnit,
        window: Interval,
        guarded: Interval,
    ) -> None:
        try:
            await tx.place_window(hold.id, unit, window, guarded)
        except DomainError as error:
            if error.reason != "SOLD_OUT":
                raise
            if not await tx.reclaim_lapsed_windows(unit.id, guard_seconds(guarded)):
                raise
            await tx.place_window(hold.id, unit, window, guarded)

    async def _refuse_slots_of_windowed(self, tenant_id: str, request: HoldRequest) -> None:
        """A windowed resource has no slots: asking it for some is a request
        of the wrong shape, said as such rather than as an unknown slot."""
        if await self._repo.resource_kind(tenant_id, request.resource_id) is ResourceKind.WINDOWED:
            raise _invalid(
                "slot_ids",
                f"resource {request.resource_id} is sold in windows:"
                " give window with party_size or unit_id instead",
            )

    async def _confirm_late_window(
        self, tx: Transaction, hold: Hold, window: HoldWindow, payment_ref: str
    ) -> Hold:
        """A late payment for a RELEASED or EXPIRED windowed hold (locked in
        `tx`): CONFIRMED with its window live again on the same unit, or, when
        the unit was taken or retired meanwhile, nothing changed and
        HOLD_EXPIRED_NO_CAPACITY (refund the payment)."""
        try:
            # The window is only placed for a live hold: confirm first, and
            # undo the confirmation with the savepoint if the window is gone.
            async with tx.savepoint():
                confirmed = await tx.transition_hold(
                    hold,
                    rules.transition(hold.status, HoldStatus.CONFIRMED),
                    reason=f"paid after the hold was {hold.status.value.lower()}; window retaken",
                    payment_ref=payment_ref,
                )
                await tx.revive_window(hold.id, window)
        except DomainError as error:
            if error.reason not in _UNIT_REFUSALS:
                raise
            raise failed_precondition(
                "HOLD_EXPIRED_NO_CAPACITY",
                f"the hold lapsed and unit {window.unit_name} was taken or retired meanwhile;"
                " refund the payment",
                {"status": hold.status.value, "cause": error.reason},
            ) from None
        return confirmed
