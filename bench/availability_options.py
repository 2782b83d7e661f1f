"""The options of `bench.availability`, in a module of their own so that its
parts take them without importing the entry module."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Options:
    booking_target: str
    availability_target: str
    availability_metrics: str | None
    # The availability service's process, for its CPU per call (found from
    # the target's port when it runs on this machine).
    availability_pid: int | None
    channels: int
    client_processes: int
    concurrency: int
    seconds: float
    rounds: int
    warmup: int
    warmup_seconds: float
    slots: int
    lag_rounds: int
    lag_poll_ms: float
    lag_settle_ms: float
    lag_timeout: float
