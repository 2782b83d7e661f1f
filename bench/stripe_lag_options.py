"""The options of `bench.stripe_lag`, in a module of their own so that its
rounds take them without importing the entry module."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Options:
    database_url: str
    redis_url: str
    rounds: int
    warmup: int
    interval_ms: float
    slow_seconds: float
    keep_logs: bool
