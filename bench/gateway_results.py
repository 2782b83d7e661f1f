"""What a run of `bench.gateway` measured and checked, as its report reads it."""

from __future__ import annotations

from dataclasses import dataclass

from bench.gateway_cached import Cached
from bench.gateway_checks import Consistency
from bench.gateway_users import Record, RouteFigures
from bench.gateway_window import Window


@dataclass
class Results:
    tenant: str
    clients: int
    measured_seconds: float
    started_in_ramp: int
    routes: dict[str, RouteFigures]
    overall: RouteFigures
    window: Window
    consistency: Consistency
    record: Record
    postgres: str
    cached: Cached | None = None
