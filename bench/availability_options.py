"""The options of `bench.availability`, in a module of their own so that its
parts take them without importing the entry module."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Options:
    booking_target: str
    availability_target: str
    redis_url: str
    availability_metrics: str | None
    channels: int
    concurrency: int
    requests: int
    seconds: float | None
    rounds: int
    warmup: int
    slots: int
    lag_rounds: int
    lag_poll_ms: float
    lag_settle_ms: float
    lag_timeout: float
