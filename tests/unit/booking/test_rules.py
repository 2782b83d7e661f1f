"""The booking rules table, checked without a database."""

from __future__ import annotations

import pytest

from services.booking import rules
from services.booking.domain import HoldStatus
from services.booking.rules import TRANSITIONS, CheckoutEffect, IllegalTransition


def occupied(status: HoldStatus | None) -> tuple[int, int]:
    return rules.OCCUPIES.get(status, (0, 0)) if status is not None else (0, 0)


@pytest.mark.parametrize("rule", TRANSITIONS, ids=lambda t: f"{t.from_status}->{t.to_status}")
def test_deltas_move_what_the_statuses_occupy(rule: rules.Transition) -> None:
    (held_before, booked_before), (held_after, booked_after) = (
        occupied(rule.from_status),
        occupied(rule.to_status),
    )
    assert (rule.held, rule.booked) == (held_after - held_before, booked_after - booked_before)
    for quantity in (1, 3):
        assert rule.held_delta(quantity) == rule.held * quantity
        assert rule.booked_delta(quantity) == rule.booked * quantity


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
