"""What a run of `bench.webhooks` measured and checked, as its report reads it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from bench.grpc_load import Phase
from bench.stats import Latencies
from bench.webhook_rounds import Side
from bench.webhook_timings import Clock, Timings


@dataclass
class Results:
    body_bytes: int
    clock: Clock
    ack: Phase
    service_side: Side
    ceiling: Side | None
    redelivered: int
    drained: bool
    drain_seconds: float
    timings: Timings
    event_statuses: Counter[str]
    retried_events: int
    problems: list[str]
    duplicates: Phase
    duplicate_answers: Counter[str]
    duplicate_problems: list[str]
    failures: dict[str, str]
    duplicate_failures: dict[str, str]
    cpu_ack: dict[str, float | None]
    cpu_until_confirmed: dict[str, float | None]
    service_ack: dict[str, Any] | None
    service_until_confirmed: dict[str, Any] | None

    @property
    def ack_p99_ms(self) -> float:
        return Latencies.of(self.ack.latencies).p99_ms

    @property
    def passed(self) -> bool:
        return not self.problems and not self.duplicate_problems
