"""What a run of `bench.availability` measured, as its report reads it."""

from __future__ import annotations

from dataclasses import dataclass

from bench.availability_client import Measured
from bench.availability_lag import LagResult
from bench.stats import Latencies

HITS = "cache hits"
BARE = "bare grpc.aio"
MISSES = "cache misses"


@dataclass
class Results:
    answer_bytes: int
    hits: Measured
    # The ceiling: a bare grpc.aio server answering the same bytes.
    bare: Measured
    misses: Measured
    lag: LagResult

    @property
    def ratio(self) -> float:
        bare = self.bare.phase.throughput
        return self.hits.phase.throughput / bare if bare else 0.0

    @property
    def hit_p99_ms(self) -> float:
        return Latencies.of(self.hits.phase.latencies).p99_ms

    @property
    def wrong(self) -> int:
        return self.hits.wrong + self.bare.wrong + self.misses.wrong + len(self.lag.wrong)
