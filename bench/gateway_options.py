"""The options of `bench.gateway`, in a module of their own so that its parts
take them without importing the entry module."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Options:
    gateway_url: str
    database_url: str
    users: int
    users_per_client: int
    seconds: float
    ramp_seconds: float
    think_ms: float
    browse: int
    resources: int
    slots: int
    one_address: bool
    gateway_metrics: str | None
    booking_metrics: str | None
    availability_metrics: str | None
    pids: dict[str, list[int]]
    seed: int
    cached_seconds: float = 5.0
    cached_connections: int = 64
    cached_rounds: int = 3
    only_cached: bool = False
