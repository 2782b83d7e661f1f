"""The availability service's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from holdfast.platform.metrics import RpcMetrics

# Commit -> applied: a few milliseconds when healthy, up to the relay's retry
# backoff (seconds) after an outage.
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class AvailabilityMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.rpc = RpcMetrics(self.registry)
        self.cache_hits = Counter(
            "holdfast_availability_cache_hits",
            "Answers served from a cache level (local or redis), per resource",
            ["level"],
            registry=self.registry,
        )
        self.cache_misses = Counter(
            "holdfast_availability_cache_misses",
            "Answers read from Postgres, per resource, by why"
            " (miss, degraded, fresh, invalidating)",
            ["reason"],
            registry=self.registry,
        )
        # The series the read path counts on every answer, found once.
        self.local_hits = self.cache_hits.labels("local")
        self.redis_hits = self.cache_hits.labels("redis")
        self.cache_errors = Counter(
            "holdfast_availability_cache_errors",
            "Redis calls that failed on the request path (the answer came from Postgres)",
            registry=self.registry,
        )
        self.degraded = Gauge(
            "holdfast_availability_degraded",
            "1 while the cache is bypassed because Redis or its stream is unreachable",
            registry=self.registry,
        )
        self.invalidations = Counter(
            "holdfast_availability_invalidations",
            "Change messages applied to the caches",
            registry=self.registry,
        )
        self.duplicate_messages = Counter(
            "holdfast_availability_duplicate_messages",
            "Change messages seen again (at-least-once delivery), applied harmlessly",
            registry=self.registry,
        )
        self.cache_drops = Counter(
            "holdfast_availability_cache_drops",
            "Times the whole cache was dropped because missed messages could not be told",
            registry=self.registry,
        )
        self.invalidation_lag = Histogram(
            "holdfast_availability_invalidation_lag_seconds",
            "From the change's commit in Postgres to its invalidation being applied here",
            buckets=LAG_BUCKETS,
            registry=self.registry,
        )
