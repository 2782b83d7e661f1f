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


def print_service_and_pgbench(service: Phase, ceiling: Phase) -> None:
    """The distinct-holds table of bench.holds and bench.windows: the
    service's phase and pgbench's, each with what went wrong."""
    print(
        f"  {'path':<16}{'holds/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'errors':>8}{'client cpu':>12}   holds/s per round"
    )
    for phase in (service, ceiling):
        print(phase_row(phase, 16, "9.1f", "8.1f"))
        for name, count in phase.others.items():
            print(f"    {name}: {count}")
