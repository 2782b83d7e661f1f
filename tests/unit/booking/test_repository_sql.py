"""The SQL the booking repository writes once and builds its statements from."""

from __future__ import annotations

import re

import pytest

from services.booking.repository.hold_changes import transition_statement
from services.booking.repository.sql import availability_changed, insert_audit
from services.booking.rules import TRANSITIONS, CheckoutEffect, Transition


def test_an_audit_row_names_only_the_columns_given() -> None:
    sql = insert_audit(
        tenant_id="$1",
        entity_type="'slot'",
        entity_id="$2",
        action="$3",
        actor="$4",
        correlation_id="$5",
    )
    assert sql == (
        "INSERT INTO audit_log (tenant_id, entity_type, entity_id, action, actor,"
        " correlation_id) VALUES ($1, 'slot', $2, $3, $4, $5)"
    )


def test_rows_selected_from_a_source_are_one_per_source_row() -> None:
    sql = availability_changed(
        change="'slots.created'",
        resource_id="$2::uuid",
        slot_ids="array_agg(id)",
        tenant_id="$1",
        dedupe_key="'k'",
        traceparent="$3",
        correlation_id="$4",
        source="FROM created",
    )
    assert sql.startswith("INSERT INTO outbox (topic, message_key, tenant_id, payload,")
    assert "SELECT 'availability', $2::uuid::text, $1," in sql
    assert sql.endswith("FROM created")
    assert "'hold_id'" not in sql


@pytest.mark.parametrize(
    "rule",
    [t for t in TRANSITIONS if t.from_status is not None],
    ids=lambda t: f"{t.from_status}->{t.to_status}",
)
def test_a_transition_statement_uses_every_parameter_it_is_given(rule: Transition) -> None:
    sql = transition_statement(rule)
    used = {int(n) for n in re.findall(r"\$(\d+)", sql)}
    expected = 15 if rule.moves_capacity else 14
    assert used == set(range(1, expected + 1))
    assert ("UPDATE checkouts" in sql) is (rule.checkout is CheckoutEffect.COMPLETE)
    assert ("expire_checkout" in sql) is (rule.checkout is CheckoutEffect.EXPIRE_SESSION)
