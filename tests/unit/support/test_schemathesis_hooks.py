"""The fuzz test's exceptions (tests/support/schemathesis_hooks.py): a
request refused for a rule the OpenAPI document states in words is excused
only when it breaks that rule and the answer names exactly the fields that
break it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.support.schemathesis_hooks import refused_for_a_rule_no_schema_states

FAR_EAST_YEAR_ONE = "0001-01-01T01:22:38+17:38"  # year 0 once in UTC
FINE = "2031-06-01T09:00:00Z"


@dataclass
class Answer:
    status_code: int
    fields: list[str]
    detail: str = "..."

    def json(self) -> Any:
        return {"errors": [{"field": name, "detail": self.detail} for name in self.fields]}


@dataclass
class Operation:
    path: str


@dataclass
class Case:
    path: str
    body: Any = None
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def operation(self) -> Operation:
        return Operation(self.path)


SLOTS = "/v1/resources/{resource_id}/slots"
WINDOW = "/v1/resources/{resource_id}/availability"
HOLDS = "/v1/holds"
TTL_RANGE = "must be between 1s and 3600s"
SLOT_ID = "5d3ac1b5-4f60-4a5c-9d3b-111111111111"
A_WINDOW = {"start_time": FINE, "end_time": "2031-06-01T11:00:00Z"}


@pytest.mark.parametrize(
    ("answer", "case"),
    [
        pytest.param(
            Answer(422, ["slots.1.start"]),
            Case(SLOTS, {"slots": [{"start": FINE, "end": FINE}, {"start": FAR_EAST_YEAR_ONE}]}),
            id="a-slot",
        ),
        pytest.param(
            Answer(422, ["query.end"]),
            Case(WINDOW, query={"start": FINE, "end": "9999-12-31T23:00:00-05:00"}),
            id="a-window",
        ),
    ],
)
def test_a_time_out_of_range_once_in_utc_is_excused(answer: Answer, case: Case) -> None:
    assert refused_for_a_rule_no_schema_states(answer, case)


@pytest.mark.parametrize(
    ("answer", "case"),
    [
        pytest.param(
            Answer(422, ["slots.0.start"]),
            Case(SLOTS, {"slots": [{"start": FINE, "end": FINE}]}),
            id="the-time-is-fine",
        ),
        pytest.param(
            Answer(422, ["slots.0.start", "slots.0.end"]),
            Case(SLOTS, {"slots": [{"start": FAR_EAST_YEAR_ONE, "end": FINE}]}),
            id="another-field-named-too",
        ),
        pytest.param(
            Answer(400, ["query.start"]),
            Case(WINDOW, query={"start": FAR_EAST_YEAR_ONE, "end": FINE}),
            id="not-a-422",
        ),
    ],
)
def test_anything_else_is_not(answer: Answer, case: Case) -> None:
    assert not refused_for_a_rule_no_schema_states(answer, case)


def test_a_ttl_outside_the_range_the_answer_states_is_excused() -> None:
    answer = Answer(422, ["ttl_seconds"], TTL_RANGE)
    assert refused_for_a_rule_no_schema_states(answer, Case(HOLDS, {"ttl_seconds": 3601}))


@pytest.mark.parametrize(
    ("answer", "case"),
    [
        pytest.param(
            Answer(422, ["ttl_seconds"], TTL_RANGE),
            Case(HOLDS, {"ttl_seconds": 3600}),
            id="the-ttl-is-within-the-range",
        ),
        pytest.param(
            Answer(422, ["ttl_seconds"], "must be greater than 0"),
            Case(HOLDS, {"ttl_seconds": 9999}),
            id="another-rule",
        ),
        pytest.param(
            Answer(422, ["ttl_seconds", "quantity"], TTL_RANGE),
            Case(HOLDS, {"ttl_seconds": 9999, "slot_ids": [SLOT_ID], "quantity": 1}),
            id="another-field-named-too",
        ),
    ],
)
def test_a_ttl_refusal_is_excused_only_for_the_stated_range(answer: Answer, case: Case) -> None:
    assert not refused_for_a_rule_no_schema_states(answer, case)


@pytest.mark.parametrize(
    ("answer", "case", "excused"),
    [
        pytest.param(
            Answer(422, ["quantity"]),
            Case(HOLDS, {"window": A_WINDOW, "party_size": 2, "quantity": 2}),
            True,
            id="both-shapes",
        ),
        pytest.param(
            Answer(422, ["party_size"]),
            Case(HOLDS, {"window": A_WINDOW}),
            True,
            id="a-window-for-nobody",
        ),
        pytest.param(
            Answer(422, ["window"]),
            Case(HOLDS, {"window": {**A_WINDOW, "end_time": FINE}, "party_size": 2}),
            True,
            id="a-window-ending-as-it-starts",
        ),
        pytest.param(
            Answer(422, ["window"]),
            Case(HOLDS, {"window": A_WINDOW, "party_size": 2}),
            False,
            id="a-fine-window-refused",
        ),
        pytest.param(
            Answer(422, ["quantity"]),
            Case(HOLDS, {"slot_ids": [SLOT_ID], "quantity": 2}),
            False,
            id="a-fine-slot-hold-refused",
        ),
    ],
)
def test_a_hold_refusal_is_excused_only_for_a_broken_shape_or_window(
    answer: Answer, case: Case, excused: bool
) -> None:
    assert refused_for_a_rule_no_schema_states(answer, case) is excused
