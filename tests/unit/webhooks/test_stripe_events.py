"""The table of Stripe events holdfast handles (services.webhooks.events) is
the one list: every row has a handler, and what lists the events elsewhere
(the README, the fake Stripe, deploy/) says the same."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from devtools.fakestripe.config import FakeStripeConfig
from devtools.fakestripe.events import CHECKOUT_EVENTS
from services.webhooks.events import HANDLED_EVENTS, HANDLERS

ROOT = Path(__file__).resolve().parents[3]
_README_LIST = re.compile(
    r"<!-- handled-stripe-events\b.*?-->(.*?)<!-- /handled-stripe-events -->", re.DOTALL
)
_EVENT_TYPE = re.compile(r"\b(?:checkout\.session|charge|payment_intent|refund)\.[a-z_.]+\b")


def test_every_row_has_a_handler_and_a_one_line_description() -> None:
    assert HANDLERS
    for event_type, row in HANDLERS.items():
        assert re.fullmatch(r"[a-z_]+(\.[a-z_]+)+", event_type), event_type
        assert inspect.iscoroutinefunction(row.handle), event_type
        assert row.description.strip(), event_type
        assert "\n" not in row.description, event_type


def test_the_readme_lists_exactly_the_handled_events() -> None:
    readme = (ROOT / "README.md").read_text()
    (block,) = _README_LIST.findall(readme)
    listed = re.findall(r"^\s*- `([^`]+)`\s*$", block, re.MULTILINE)
    assert sorted(listed) == sorted(HANDLED_EVENTS)
    assert len(listed) == len(set(listed))


def test_the_fake_stripe_sends_only_handled_events_by_default() -> None:
    assert CHECKOUT_EVENTS
    assert set(FakeStripeConfig().enabled_events) == CHECKOUT_EVENTS
    assert CHECKOUT_EVENTS <= HANDLED_EVENTS


def test_deploy_names_no_event_holdfast_does_not_handle() -> None:
    named = {
        match
        for path in (ROOT / "deploy").rglob("*")
        if path.is_file() and path.suffix in {".yaml", ".yml", ""}
        for match in _EVENT_TYPE.findall(path.read_text(errors="ignore"))
    }
    assert named <= HANDLED_EVENTS
