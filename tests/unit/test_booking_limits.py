"""The booking service's limits on a request, from its settings, with no I/O."""

from __future__ import annotations

from datetime import timedelta

from services.booking.limits import HoldTtl

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
