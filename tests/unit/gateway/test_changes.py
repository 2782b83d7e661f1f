"""The change ledger behind availability ETags: a version per resource while
it is sure it has read the stream to its end, and none otherwise."""

from __future__ import annotations

from gateway.changes import ChangeLedger

A = ("tenant-a", "resource-1")
B = ("tenant-a", "resource-2")


def _following(remembered: int = 100) -> ChangeLedger:
    ledger = ChangeLedger(block_seconds=60, remembered=remembered)
    ledger.restart("100-0")
    ledger.read([], full_batch=False)
    return ledger


def test_no_version_before_the_first_read_comes_back() -> None:
    ledger = ChangeLedger(block_seconds=60)
    assert ledger.version(A) is None
    ledger.restart("100-0")
    assert ledger.version(A) is None
    ledger.read([], full_batch=False)
    assert ledger.version(A) is not None


def test_a_change_moves_only_its_resources_version() -> None:
    ledger = _following()
    a, b = ledger.version(A), ledger.version(B)
    assert a is not None
    assert a.change_id == "100-0"

    ledger.read([(A, "101-0"), (A, "102-0")], full_batch=False)

    moved = ledger.version(A)
    assert moved is not None
    assert moved.change_id == "102-0"
    assert ledger.version(B) == b
    assert moved != a


def test_lost_or_lagging_it_vouches_for_nothing() -> None:
    ledger = _following()
    ledger.read([(A, "101-0")], full_batch=True)  # more may be waiting
    assert ledger.version(A) is None
    ledger.read([], full_batch=False)
    assert ledger.version(A) is not None
    ledger.lost()
    assert ledger.version(A) is None
    ledger.read([], full_batch=False)  # a late read of the lost session
    assert ledger.version(A) is None


def test_a_restart_makes_every_version_new() -> None:
    ledger = _following()
    before = ledger.version(A)
    ledger.restart("100-0")  # the same stream position, another session
    ledger.read([], full_batch=False)
    after = ledger.version(A)
    assert before is not None
    assert after is not None
    assert before.change_id == after.change_id
    assert before != after


def test_a_forgotten_resource_raises_the_floor_for_the_unremembered() -> None:
    ledger = _following(remembered=1)
    untouched = ("tenant-b", "resource-9")
    ledger.read([(A, "101-0"), (B, "102-0")], full_batch=False)  # A is forgotten

    a, b, other = ledger.version(A), ledger.version(B), ledger.version(untouched)
    assert a is not None
    assert b is not None
    assert other is not None
    # Never older than the newest change each may have had.
    assert a.change_id == "101-0"
    assert other.change_id == "101-0"
    assert b.change_id == "102-0"
