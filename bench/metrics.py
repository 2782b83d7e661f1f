"""The services' Prometheus /metrics, scraped around a phase: the
differences of their counters, and what the availability service's say
(where answers came from, how late its invalidations were)."""

from __future__ import annotations

import asyncio
import urllib.request
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

METRICS_TIMEOUT_SECONDS = 5.0
LAG_METRIC = "holdfast_availability_invalidation_lag_seconds"
HITS_METRIC = "holdfast_availability_cache_hits_total"
MISSES_METRIC = "holdfast_availability_cache_misses_total"
Samples = dict[str, float]


def _scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=METRICS_TIMEOUT_SECONDS) as response:
        text = response.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


class Metrics:
    """Differences of the availability service's counters around phases."""

    def __init__(self, url: str | None) -> None:
        self.url = url

    async def read(self) -> Samples:
        return await asyncio.to_thread(_scrape, self.url) if self.url else {}

    @staticmethod
    def delta(before: Samples, after: Samples) -> Samples:
        return {k: v - before.get(k, 0.0) for k, v in after.items() if v != before.get(k, 0.0)}


def cache_levels(delta: Samples) -> dict[str, int]:
    """The service's answers by where they came from: "local hit", "redis hit",
    "miss" (read from Postgres) or "degraded" (cache bypassed), per resource."""
    levels: dict[str, int] = {}
    for name, value in delta.items():
        if name.startswith(f"{HITS_METRIC}{{level="):
            levels[f"{name.split('=')[1].rstrip('}')} hit"] = round(value)
        elif name.startswith(f"{MISSES_METRIC}{{reason="):
            levels[name.split("=")[1].rstrip("}")] = round(value)
    return dict(sorted(levels.items()))


@dataclass(frozen=True)
class ServiceLag:
    """The service's lag histogram over one stretch: messages applied, mean,
    and the upper bound of the bucket holding the 99th percentile."""

    count: int
    mean_ms: float
    p99_bucket_ms: float | None

    @classmethod
    def of(cls, delta: Samples) -> ServiceLag:
        count = round(delta.get(f"{LAG_METRIC}_count", 0.0))
        total = delta.get(f"{LAG_METRIC}_sum", 0.0)
        # Bucket keys look like `..._bucket{le=0.005}` (see _scrape); cumulative.
        buckets = sorted(
            (float(name.split("le=")[-1].rstrip("}")), value)
            for name, value in delta.items()
            if name.startswith(f"{LAG_METRIC}_bucket")
        )
        p99: float | None = None
        for upper, cumulative in buckets:
            if count and cumulative >= 0.99 * count:
                p99 = upper * 1000
                break
        return cls(count, total / count * 1000 if count else 0.0, p99)
