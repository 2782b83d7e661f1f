"""The booking rules table, checked without a database."""

from __future__ import annotations

import pytest

from services.booking import rules
from services.booking.domain import HoldStatus
from services.booking.rules import TRANSITIONS, CheckoutEffect, IllegalTransition

S = HoldStatus


@pytest.mark.parametrize(
    ("from_status", "to_status", "held", "booked"),
    [
        (None, S.HELD, +1, 0),
        (S.HELD, S.RELEASED, -1, 0),
        (S.HELD, S.EXPIRED, -1, 0),
        (S.HELD, S.CONFIRMED, -1, +1),
        (S.RELEASED, S.CONFIRMED, 0, +1),
        (S.EXPIRED, S.CONFIRMED, 0, +1),
        (S.CONFIRMED, S.CANCELLED, 0, -1),
        (S.CONFIRMED, S.REFUNDED, 0, -1),
        (S.CANCELLED, S.REFUNDED, 0, 0),
    ],
)
def test_each_transition_moves_the_counters_its_statuses_occupy(
    from_status: HoldStatus | None, to_status: HoldStatus, held: int, booked: int
) -> None:
    rule = rules.transition(from_status, to_status)
    assert (rule.held, rule.booked) == (held, booked)
    assert rule.moves_capacity == ((held, booked) != (0, 0))


def test_every_transition_is_in_the_expected_table() -> None:
    # A new row must come with its expected counter moves above.
    assert len(TRANSITIONS) == 9


@pytest.mark.parametrize("rule", TRANSITIONS, ids=lambda t: f"{t.from_status}->{t.to_status}")
def test_each_transition_has_an_audit_action_named_after_its_status(
    rule: rules.Transition,
) -> None:
    # The creation is "hold.created"; every other change names the status entered.
    named = "created" if rule.from_status is None else rule.to_status.value.lower()
    assert rule.audit_action == f"hold.{named}"


def test_a_hold_that_ends_unpaid_expires_its_checkout_and_a_paid_one_completes_it() -> None:
    for rule in TRANSITIONS:
        if rule.to_status is HoldStatus.CONFIRMED:
            assert rule.checkout is CheckoutEffect.COMPLETE
        elif rule.from_status is HoldStatus.HELD:
            assert rule.checkout is CheckoutEffect.EXPIRE_SESSION
        else:
            assert rule.checkout is CheckoutEffect.NONE


def test_transitions_are_unique() -> None:
    pairs = [(t.from_status, t.to_status) for t in TRANSITIONS]
    assert len(pairs) == len(set(pairs))


@pytest.mark.parametrize(
    ("from_status", "to_status"),
    [
        (HoldStatus.CONFIRMED, HoldStatus.HELD),
        (HoldStatus.RELEASED, HoldStatus.HELD),
        (HoldStatus.CANCELLED, HoldStatus.CONFIRMED),
        (HoldStatus.REFUNDED, HoldStatus.CANCELLED),
        (HoldStatus.EXPIRED, HoldStatus.RELEASED),
        (HoldStatus.HELD, HoldStatus.REFUNDED),
        (HoldStatus.HELD, HoldStatus.CANCELLED),
        (None, HoldStatus.CONFIRMED),
    ],
)
def test_illegal_transitions_are_refused(
    from_status: HoldStatus | None, to_status: HoldStatus
) -> None:
    with pytest.raises(IllegalTransition):
        rules.transition(from_status, to_status)


def test_final_statuses_have_no_way_out() -> None:
    for rule in TRANSITIONS:
        assert rule.from_status is not HoldStatus.REFUNDED


def test_counter_updates_name_only_the_counters_a_rule_moves() -> None:
    confirm = rules.transition(HoldStatus.HELD, HoldStatus.CONFIRMED)
    assert rules.counter_updates(confirm, "$4") == (
        "held = held - $4, booked = booked + $4, version = version + 1"
    )
    assert rules.counter_updates(rules.EXPIRE, "back.quantity", "s.") == (
        "held = s.held - back.quantity, version = s.version + 1"
    )
    refund_cancelled = rules.transition(HoldStatus.CANCELLED, HoldStatus.REFUNDED)
    assert not refund_cancelled.moves_capacity
