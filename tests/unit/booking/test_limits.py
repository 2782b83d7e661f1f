"""The booking service's limits on a request, from its settings, with no I/O."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from holdfast.platform.errors import DomainError
from holdfast.platform.validation import Violations
from services.booking.limits import HoldTtl, check_count, check_each_once, check_return_url

TTL = HoldTtl(
    default=timedelta(minutes=10), shortest=timedelta(seconds=10), longest=timedelta(hours=1)
)


def test_a_hold_asking_no_ttl_gets_the_default() -> None:
    assert TTL.lifetime(None) == timedelta(minutes=10)
    assert TTL.lifetime(timedelta(seconds=30)) == timedelta(seconds=30)


def test_a_ttl_outside_the_range_is_refused_naming_the_range() -> None:
    assert TTL.problem(timedelta(seconds=10)) is None
    assert TTL.problem(timedelta(hours=1)) is None
    assert TTL.problem(timedelta(seconds=9.5)) == "must be between 10s and 3600s"
    assert TTL.problem(timedelta(hours=1, microseconds=1)) == "must be between 10s and 3600s"


def problems(check: Callable[[Violations], None]) -> list[tuple[str, str]]:
    v = Violations()
    check(v)
    try:
        v.raise_if_any()
    except DomainError as error:
        return [(f.field, f.description) for f in error.violations]
    return []


def test_a_list_names_at_least_one_item_and_at_most_the_limit() -> None:
    assert problems(lambda v: check_count(v, "slot_ids", 0, 3, "slot")) == [
        ("slot_ids", "must list at least one slot")
    ]
    assert problems(lambda v: check_count(v, "slot_ids", 4, 3, "slot")) == [
        ("slot_ids", "must list at most 3 slots")
    ]
    assert problems(lambda v: check_count(v, "slot_ids", 3, 3, "slot")) == []


def test_nothing_is_listed_twice() -> None:
    assert problems(lambda v: check_each_once(v, "slots", [1, 2, 1], "time range")) == [
        ("slots", "lists the same time range twice")
    ]
    assert problems(lambda v: check_each_once(v, "slots", [1, 2], "time range")) == []


def test_a_return_url_is_one_stripe_takes() -> None:
    assert problems(lambda v: check_return_url(v, "success_url", "")) == []
    assert problems(lambda v: check_return_url(v, "success_url", "https://example.com/ok")) == []
    assert problems(lambda v: check_return_url(v, "cancel_url", "x" * 2049)) == [
        ("cancel_url", "must be at most 2048 characters")
    ]
    [(field, _)] = problems(lambda v: check_return_url(v, "cancel_url", "not a url"))
    assert field == "cancel_url"
