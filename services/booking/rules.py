"""The booking rules: which hold status changes exist and what each one does.

One row per transition: the action its audit row records and what becomes
of the hold's open Stripe checkout. The reservation code asks this table for
a transition (and is refused one that does not exist); the repository builds
the SQL of each transition from its row.

What a transition does to the `held` and `booked` counters of the hold's
slots is not written per row but follows from what each status occupies: a
HELD hold counts in `held`, a CONFIRMED one in `booked`, the others in
neither (`OCCUPIES`); a transition moves the difference.
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


# What a hold in each status occupies on its slots: (held, booked) units per
# unit of quantity. Statuses not listed occupy nothing.
OCCUPIES: dict[HoldStatus, tuple[int, int]] = {
    HoldStatus.HELD: (1, 0),
    HoldStatus.CONFIRMED: (0, 1),
}


def _occupied(status: HoldStatus | None) -> tuple[int, int]:
    return OCCUPIES.get(status, (0, 0)) if status is not None else (0, 0)


@dataclass(frozen=True)
class Transition:
    """One allowed change of a hold's status. `from_status` None is the
    hold's creation."""

    from_status: HoldStatus | None
    to_status: HoldStatus
    audit_action: str
    checkout: CheckoutEffect = CheckoutEffect.NONE

    @property
    def held(self) -> int:
        """Change of the slots' `held` per unit of the hold's quantity."""
        return _occupied(self.to_status)[0] - _occupied(self.from_status)[0]

    @property
    def booked(self) -> int:
        """Change of the slots' `booked` per unit of the hold's quantity."""
        return _occupied(self.to_status)[1] - _occupied(self.from_status)[1]

    @property
    def moves_capacity(self) -> bool:
        return self.held != 0 or self.booked != 0


S = HoldStatus
TRANSITIONS: tuple[Transition, ...] = (
    Transition(None, S.HELD, "hold.created"),
    Transition(S.HELD, S.RELEASED, "hold.released", CheckoutEffect.EXPIRE_SESSION),
    Transition(S.HELD, S.EXPIRED, "hold.expired", CheckoutEffect.EXPIRE_SESSION),
    Transition(S.HELD, S.CONFIRMED, "hold.confirmed", CheckoutEffect.COMPLETE),
    # A payment that arrives after the hold lapsed takes the capacity again.
    Transition(S.RELEASED, S.CONFIRMED, "hold.confirmed", CheckoutEffect.COMPLETE),
    Transition(S.EXPIRED, S.CONFIRMED, "hold.confirmed", CheckoutEffect.COMPLETE),
    Transition(S.CONFIRMED, S.CANCELLED, "hold.cancelled"),
    Transition(S.CONFIRMED, S.REFUNDED, "hold.refunded"),
    # The money of a cancelled booking went back too; its capacity already had.
    Transition(S.CANCELLED, S.REFUNDED, "hold.refunded"),
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
