"""The acknowledgement phase of `bench.webhooks`, in alternating rounds: a
share of the measured deliveries to the webhook receiver, then the same
bodies (signed afresh) to the ceiling (bench.webhooks_ceiling) at the same
concurrency, and again, so both see the same machine at the same times.

Each side's CPU is counted over its own rounds only, from /proc: the
receiver's process (--pid webhooks=PID, or every pid given) and the
ceiling's. The receiver's includes what its event processor did meanwhile.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from bench.grpc_load import Phase
from bench.processes import cpu_seconds
from bench.webhook_delivery import Delivery, Receiver, deliver


@dataclass
class Side:
    """One side's merged rounds and the CPU its process(es) used in them."""

    phase: Phase
    pids: list[int]
    cpu_seconds: float | None = 0.0

    @property
    def cpu_ms_per_delivery(self) -> float | None:
        count = len(self.phase.latencies)
        if self.cpu_seconds is None or not self.pids or not count:
            return None
        return round(self.cpu_seconds * 1000 / count, 3)

    def add(self, round_phase: Phase, cpu: float | None) -> None:
        merged = self.phase
        merged.latencies.extend(round_phase.latencies)
        merged.outcomes.update(round_phase.outcomes)
        merged.wall_seconds += round_phase.wall_seconds
        merged.client_cpu_seconds += round_phase.client_cpu_seconds
        merged.rounds.append(round_phase.throughput)
        if cpu is None or self.cpu_seconds is None:
            self.cpu_seconds = None
        else:
            self.cpu_seconds += cpu


def _chunks(deliveries: Sequence[Delivery], rounds: int) -> list[Sequence[Delivery]]:
    rounds = max(1, min(rounds, len(deliveries)))
    bounds = [i * len(deliveries) // rounds for i in range(rounds + 1)]
    return [deliveries[a:b] for a, b in itertools.pairwise(bounds)]


async def _round(
    label: str, receiver: Receiver, deliveries: Sequence[Delivery], concurrency: int, side: Side
) -> None:
    before = cpu_seconds(side.pids) if side.pids else None
    phase = await deliver(label, receiver, deliveries, concurrency)
    after = cpu_seconds(side.pids) if side.pids else None
    used = None if before is None or after is None else after - before
    side.add(phase, used)


async def alternate(
    receiver: Receiver,
    ceiling: Receiver | None,
    measured: Sequence[Delivery],
    concurrency: int,
    rounds: int,
    pids: tuple[list[int], list[int]],
) -> tuple[Side, Side | None]:
    """The receiver's side (answers kept on `measured`) and the ceiling's
    (its answers on copies, which it does not store)."""
    service = Side(Phase("acknowledgement"), pids[0])
    top = Side(Phase("ceiling"), pids[1]) if ceiling is not None else None
    for chunk in _chunks(measured, rounds):
        await _round("acknowledgement", receiver, chunk, concurrency, service)
        if ceiling is not None and top is not None:
            copies = [Delivery(d.hold_id, d.event_id, d.payment_ref, d.body) for d in chunk]
            await _round("ceiling", ceiling, copies, concurrency, top)
    return service, top
