"""The booking rules: which hold status changes exist and what each one does.

One row per transition: what it does to the `held` and `booked` counters of
the hold's slots (in units of the hold's quantity), the action its audit row
records, and what becomes of the hold's open Stripe checkout. The reservation
code asks this table for a transition (and is refused one that does not
exist); the repository builds the SQL of each transition from its row.

A slot's counters count what its holds occupy: a HELD hold counts in `held`,
a CONFIRMED one in `booked`, the others in neither (see `OCCUPIES`). Every
transition's deltas are the difference between what the two statuses occupy,
which the unit tests check.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from services.booking.domain import HoldStatus


class CheckoutEffect(enum.Enum):
    """What a transition does to the hold's unresolved Stripe checkout."""

    NONE = "none"
    # The hold is paid: its unresolved attempt is COMPLETE.
    COMPLETE = "complete"
    # The hold ended unpaid: its OPEN session is expired at Stripe (an outbox
    # action the payment actions carry out after the commit).
    EXPIRE_SESSION = "expire_session"


@dataclass(frozen=True)
class Transition:
    """One allowed change of a hold's status. `from_status` None is the
    hold's creation."""

    from_status: HoldStatus | None
    to_status: HoldStatus
    # Change of the slots' counters per unit of the hold's quantity.
    held: int
    booked: int
    audit_action: str
    checkout: CheckoutEffect = CheckoutEffect.NONE

    def held_delta(self, quantity: int) -> int:
        return self.held * quantity

    def booked_delta(self, quantity: int) -> int:
        return self.booked * quantity

    @property
    def moves_capacity(self) -> bool:
        return self.held != 0 or self.booked != 0


# What a hold in each status occupies on its slots: (held, booked) units per
# unit of quantity. Statuses not listed occupy nothing.
OCCUPIES: dict[HoldStatus, tuple[int, int]] = {
    HoldStatus.HELD: (1, 0),
    HoldStatus.CONFIRMED: (0, 1),
}

S = HoldStatus
TRANSITIONS: tuple[Transition, ...] = (
    Transition(None, S.HELD, +1, 0, "hold.created"),
    Transition(S.HELD, S.RELEASED, -1, 0, "hold.released", CheckoutEffect.EXPIRE_SESSION),
    Transition(S.HELD, S.EXPIRED, -1, 0, "hold.expired", CheckoutEffect.EXPIRE_SESSION),
    Transition(S.HELD, S.CONFIRMED, -1, +1, "hold.confirmed", CheckoutEffect.COMPLETE),
    # A payment that arrives after the hold lapsed takes the capacity again.
    Transition(S.RELEASED, S.CONFIRMED, 0, +1, "hold.confirmed", CheckoutEffect.COMPLETE),
    Transition(S.EXPIRED, S.CONFIRMED, 0, +1, "hold.confirmed", CheckoutEffect.COMPLETE),
    Transition(S.CONFIRMED, S.CANCELLED, 0, -1, "hold.cancelled"),
    Transition(S.CONFIRMED, S.REFUNDED, 0, -1, "hold.refunded"),
    # The money of a cancelled booking went back too; its capacity already had.
    Transition(S.CANCELLED, S.REFUNDED, 0, 0, "hold.refunded"),
)
del S

_BY_STATUSES = {(t.from_status, t.to_status): t for t in TRANSITIONS}


class IllegalTransition(ValueError):
    """A status change the booking rules do not have: a programming error,
    since the reservation code checks a hold's status before it asks."""


def transition(from_status: HoldStatus | None, to_status: HoldStatus) -> Transition:
    """The rule for moving a hold from `from_status` to `to_status`."""
    try:
        return _BY_STATUSES[(from_status, to_status)]
    except KeyError:
        raise IllegalTransition(f"no transition from {from_status} to {to_status}") from None


CREATE = transition(None, HoldStatus.HELD)
EXPIRE = transition(HoldStatus.HELD, HoldStatus.EXPIRED)


def counter_updates(rule: Transition, quantity: str, table: str = "") -> str:
    """The SET list moving a slot's counters by `rule`, for `quantity` units
    (an SQL expression); `table` qualifies the columns read (e.g. "s.").
    Bumps the slot's version too: every change of counters is a new version."""
    moves = [
        f"{column} = {table}{column} {'+' if units > 0 else '-'} {_times(units, quantity)}"
        for column, units in (("held", rule.held), ("booked", rule.booked))
        if units != 0
    ]
    return ", ".join([*moves, f"version = {table}version + 1"])


def _times(units: int, quantity: str) -> str:
    return quantity if abs(units) == 1 else f"{abs(units)} * {quantity}"
