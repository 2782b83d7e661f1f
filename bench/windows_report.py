"""What bench.windows found, and how it reads: the hot window's outcome, the
database's checks, and the distinct-window table next to pgbench."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.grpc_load import Phase
from bench.report import met, print_service_and_pgbench
from bench.stats import Latencies

if TYPE_CHECKING:
    from bench.windows import Options

HOT_WINDOW_TARGET_SECONDS = 1.0


@dataclass
class HotWindow:
    phase: Phase
    # What the database has for the hot window's resource afterwards.
    holds: int
    live_windows: int

    @property
    def consistent(self) -> bool:
        """Sold once, and the database agrees with the answers (nothing half-written)."""
        return self.phase.ok == 1 and self.holds == 1 and self.live_windows == 1

    @property
    def clean(self) -> bool:
        return self.phase.sold_out == len(self.phase.latencies) - 1 and not self.phase.others

    @property
    def target_met(self) -> bool:
        return (
            self.consistent and self.clean and self.phase.wall_seconds < HOT_WINDOW_TARGET_SECONDS
        )

    def figures(self) -> dict[str, Any]:
        return {
            **self.phase.figures(),
            "holds_in_db": self.holds,
            "live_windows_in_db": self.live_windows,
            "target_met": self.target_met,
        }


@dataclass(frozen=True)
class Checks:
    live_windows: int
    expected_live: int
    overlapping: int

    @property
    def passed(self) -> bool:
        return self.overlapping == 0 and self.live_windows == self.expected_live


def print_hot_window(hot: HotWindow) -> None:
    lat = Latencies.of(hot.phase.latencies)
    others = ", ".join(f"{k} {v}" for k, v in hot.phase.others.items()) or "none"
    print(
        f"hot window: {len(hot.phase.latencies)} concurrent CreateHold (party of 2) for one "
        "two-hour window on a resource with one table\n"
        f"  ok {hot.phase.ok}   sold out {hot.phase.sold_out}   other errors: {others}\n"
        f"  last answer after {hot.phase.wall_seconds * 1000:.0f} ms   "
        f"latency p50 {lat.p50_ms:.0f}  p95 {lat.p95_ms:.0f}  p99 {lat.p99_ms:.0f}  "
        f"max {lat.max_ms:.0f} ms\n"
        f"  in Postgres: {hot.holds} hold(s), {hot.live_windows} live window(s)\n"
        f"  target (exactly 1 ok, the rest SOLD_OUT, < {HOT_WINDOW_TARGET_SECONDS:.0f} s): "
        f"{met(hot.target_met)}\n"
    )


def print_distinct(
    options: Options, service: Phase, ceiling: Phase, ratio: float, checks: Checks
) -> None:
    print(
        f"distinct windows: {options.rounds} alternating rounds of {options.seconds:g} s per "
        f"path; the service over {options.units} units, {options.concurrency} in flight, after "
        f"{options.warmup} warm-up holds; pgbench ({options.pgbench_clients} clients, "
        f"{options.pgbench_threads} threads) runs bench/windows_hold.sql, one unit per client"
    )
    print_service_and_pgbench(service, ceiling)
    print(f"  ratio service/pgbench {ratio:.2f}  (pgbench is the ceiling)")
    verdict = "PASS" if checks.passed else "FAIL"
    print(
        f"  in Postgres: {checks.live_windows} live windows for {checks.expected_live} holds "
        f"answered, {checks.overlapping} overlapping on a unit: {verdict}\n"
    )
