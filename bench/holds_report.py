"""What bench.holds found, and how it reads: the hot slot's outcome and the
distinct-slot table next to pgbench."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.grpc_load import Phase
from bench.report import met, print_service_and_pgbench
from bench.stats import Latencies

if TYPE_CHECKING:
    from bench.holds import Options

HOT_SLOT_TARGET_SECONDS = 0.5


@dataclass
class HotSlotResult:
    phase: Phase
    capacity: int
    # What the slot's row and its holds say afterwards.
    held: int
    booked: int
    live_holds: int

    @property
    def passed(self) -> bool:
        return (
            self.phase.ok == self.capacity
            and self.phase.sold_out == len(self.phase.latencies) - self.capacity
            and not self.phase.others
            and self.held == self.capacity
            and self.live_holds == self.capacity
            and self.phase.wall_seconds < HOT_SLOT_TARGET_SECONDS
        )

    @property
    def consistent(self) -> bool:
        """Never oversold, and the row agrees with the answers callers got."""
        return (
            self.held + self.booked <= self.capacity
            and self.held == self.phase.ok
            and self.live_holds == self.phase.ok
        )

    def figures(self) -> dict[str, Any]:
        return {
            **self.phase.figures(),
            "capacity": self.capacity,
            "slot_held": self.held,
            "slot_booked": self.booked,
            "live_holds": self.live_holds,
            "target_met": self.passed,
        }


def print_hot_slot(hot: HotSlotResult) -> None:
    lat = Latencies.of(hot.phase.latencies)
    others = ", ".join(f"{k} {v}" for k, v in hot.phase.others.items()) or "none"
    print(
        f"hot slot: {len(hot.phase.latencies)} concurrent CreateHold (quantity 1) "
        f"on one slot of capacity {hot.capacity}\n"
        f"  ok {hot.phase.ok}   sold out {hot.phase.sold_out}   other errors: {others}\n"
        f"  last answer after {hot.phase.wall_seconds * 1000:.0f} ms   "
        f"latency p50 {lat.p50_ms:.0f}  p95 {lat.p95_ms:.0f}  p99 {lat.p99_ms:.0f}  "
        f"max {lat.max_ms:.0f} ms\n"
        f"  slot row in Postgres: held {hot.held}  booked {hot.booked}  "
        f"(live holds {hot.live_holds})\n"
        f"  target (exactly {hot.capacity} ok, the rest sold out, no other errors, "
        f"< {HOT_SLOT_TARGET_SECONDS * 1000:.0f} ms): {met(hot.passed)}\n"
    )


def print_distinct(
    options: Options, service: Phase, ceiling: Phase, cpu_ms_per_hold: float | None
) -> None:
    from bench.holds import RATIO_TARGET

    print(
        f"distinct slots: {options.rounds} alternating rounds of {options.seconds:g} s per "
        f"path; the service over {options.slots} slots, {options.concurrency} in flight, after "
        f"{options.warmup} warm-up holds; pgbench ({options.pgbench_clients} clients, "
        f"{options.pgbench_threads} threads) runs bench/slot_hold.sql, one slot per client"
    )
    print_service_and_pgbench(service, ceiling)
    ratio = service.throughput / ceiling.throughput if ceiling.throughput else 0.0
    print(
        f"  ratio service/pgbench {ratio:.2f}  (pgbench is the ceiling; target >= "
        f"{RATIO_TARGET}: {met(ratio >= RATIO_TARGET)})"
    )
    cpu = (
        "n/a (the service is not a process here; --booking-pid)"
        if cpu_ms_per_hold is None
        else f"{cpu_ms_per_hold:.2f} ms"
    )
    print(f"  booking service CPU per hold: {cpu}\n")
