"""Half-open intervals of time, [start, end), held in UTC.

Half-open so that a booking ending at 21:00 and the next starting at 21:00 do
not overlap, and so that the database's `tstzrange(start, end, '[)')` agrees
with this module. Naive datetimes are refused: a time without a zone is a
guess, and a guess here sells a table twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True, slots=True, order=True)
class Interval:
    """The instants t with start <= t < end; never empty."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        for name, value in (("start", self.start), ("end", self.end)):
            if value.tzinfo is None or value.utcoffset() is None:
                raise ValueError(f"{name} must be time-zone aware, got {value.isoformat()}")
        # UTC, so that comparisons never depend on a zone's fold handling.
        object.__setattr__(self, "start", self.start.astimezone(UTC))
        object.__setattr__(self, "end", self.end.astimezone(UTC))
        if self.end <= self.start:
            raise ValueError(
                f"end {self.end.isoformat()} must be after start {self.start.isoformat()}"
            )

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    def overlaps(self, other: Interval) -> bool:
        return self.start < other.end and other.start < self.end

    def contains(self, other: Interval) -> bool:
        return self.start <= other.start and other.end <= self.end

    def contains_instant(self, instant: datetime) -> bool:
        return self.start <= instant < self.end

    def intersection(self, other: Interval) -> Interval | None:
        start, end = max(self.start, other.start), min(self.end, other.end)
        return Interval(start, end) if start < end else None


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """The same instants as sorted, disjoint intervals; touching ones are joined."""
    merged: list[Interval] = []
    for interval in sorted(intervals):
        if merged and interval.start <= merged[-1].end:
            if interval.end > merged[-1].end:
                merged[-1] = Interval(merged[-1].start, interval.end)
        else:
            merged.append(interval)
    return merged


def subtract(base: Iterable[Interval], removed: Iterable[Interval]) -> list[Interval]:
    """The instants of `base` in none of `removed`, merged."""
    cuts = merge(removed)
    result: list[Interval] = []
    for piece in merge(base):
        start = piece.start
        for cut in cuts:
            if cut.end <= start or cut.start >= piece.end:
                continue
            if cut.start > start:
                result.append(Interval(start, cut.start))
            start = max(start, cut.end)
            if start >= piece.end:
                break
        if start < piece.end:
            result.append(Interval(start, piece.end))
    return result


def intersect(a: Iterable[Interval], b: Iterable[Interval]) -> list[Interval]:
    """The instants in both `a` and `b`, merged."""
    right = merge(b)
    pieces = (
        common
        for left in merge(a)
        for other in right
        if (common := left.intersection(other)) is not None
    )
    return merge(pieces)


def covers(intervals: Iterable[Interval], window: Interval) -> bool:
    """Whether every instant of `window` is in `intervals` (touching ones count as one)."""
    return any(piece.contains(window) for piece in merge(intervals))


def overlaps_any(intervals: Iterable[Interval], window: Interval) -> bool:
    return any(interval.overlaps(window) for interval in intervals)
