"""JoinedReads: identical reads in flight at once share one round trip, and a
caller is only ever given a read sent after it asked."""

from __future__ import annotations

import asyncio

import pytest

from services.booking.joined_reads import JoinedReads


async def _settle() -> None:
    """Lets every task started so far run until it waits."""
    for _ in range(5):
        await asyncio.sleep(0)


class Database:
    """A read that answers with its own sequence number once released."""

    def __init__(self) -> None:
        self.sent = 0
        self.release = asyncio.Event()

    async def read(self, key: str) -> tuple[str, int]:
        self.sent += 1
        number = self.sent
        await self.release.wait()
        return key, number


async def test_a_caller_never_gets_a_read_sent_before_it_asked() -> None:
    db = Database()
    reads: JoinedReads[str, tuple[str, int]] = JoinedReads(db.read)
    first = asyncio.ensure_future(reads.get("slot"))
    await _settle()
    assert db.sent == 1  # in flight
    # Asked while the first read is in flight: they wait for the next one.
    later = [asyncio.ensure_future(reads.get("slot")) for _ in range(50)]
    await _settle()
    assert db.sent == 1
    db.release.set()
    assert await first == ("slot", 1)
    assert [await t for t in later] == [("slot", 2)] * 50
    assert db.sent == 2


async def test_different_keys_never_share() -> None:
    db = Database()
    reads: JoinedReads[str, tuple[str, int]] = JoinedReads(db.read)
    db.release.set()
    answers = await asyncio.gather(reads.get("a"), reads.get("b"), reads.get("a"))
    assert [key for key, _ in answers] == ["a", "b", "a"]
    # The second "a" asked while the first was in flight: a read of its own.
    assert db.sent == 3


async def test_a_caller_that_gives_up_leaves_the_read_to_the_others() -> None:
    db = Database()
    reads: JoinedReads[str, tuple[str, int]] = JoinedReads(db.read)
    first = asyncio.ensure_future(reads.get("slot"))
    await _settle()
    waiting = [asyncio.ensure_future(reads.get("slot")) for _ in range(3)]
    await _settle()
    first.cancel()
    waiting[0].cancel()
    db.release.set()
    assert [await t for t in waiting[1:]] == [("slot", 2)] * 2
    assert db.sent == 2


async def test_a_failed_read_fails_its_sharers_only() -> None:
    calls = 0

    async def read(key: str) -> int:
        nonlocal calls
        calls += 1
        await _settle()
        if calls == 1:
            raise RuntimeError("database away")
        return calls

    reads: JoinedReads[str, int] = JoinedReads(read)
    first = asyncio.ensure_future(reads.get("slot"))
    await _settle()
    second = asyncio.ensure_future(reads.get("slot"))
    with pytest.raises(RuntimeError):
        await first
    assert await second == 2
