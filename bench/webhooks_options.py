"""The options of `bench.webhooks`, in a module of their own so that its
parts take them without importing the entry module."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Options:
    booking_target: str
    webhooks_url: str
    database_url: str
    secret: str
    webhooks_metrics: str | None
    channels: int
    concurrency: int
    events: int
    warmup: int
    slots: int
    duplicate_events: int
    duplicate_copies: int
    drain_timeout: float
    poll_ms: float
    pids: dict[str, list[int]]
    # Alternating rounds of the receiver and its ceiling (0 rounds: no ceiling).
    rounds: int = 4
    ceiling: bool = True
