"""What the benchmarks' reports share: how a target reads, and a phase's
line in a table of phases."""

from __future__ import annotations

from bench.grpc_load import Phase
from bench.stats import Latencies


def met(ok: bool) -> str:
    """A performance target: reported, not failed."""
    return "met" if ok else "NOT met"


def phase_row(phase: Phase, label_width: int, rate: str, latency: str) -> str:
    """One phase as a table row: its rate (format `rate`), p50, p95, p99 and
    max in ms (format `latency`), errors, the bench's CPU share, and the rate
    of each round."""
    p = Latencies.of(phase.latencies)
    errors = len(phase.latencies) - phase.ok
    cpu_share = phase.client_cpu_seconds / phase.wall_seconds if phase.wall_seconds else 0
    ms = "".join(format(value, latency) for value in (p.p50_ms, p.p95_ms, p.p99_ms, p.max_ms))
    return (
        f"  {phase.label:<{label_width}}{format(phase.throughput, rate)}{ms}"
        f"{errors:8d}{cpu_share:12.0%}   " + " ".join(f"{t:.0f}" for t in phase.rounds)
    )
