"""The gateway's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from holdfast.platform.metrics import LATENCY_BUCKETS, WorkerInfo


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # /metrics is on the API port: which worker answered it.
        WorkerInfo(self.registry)
        self.requests = Counter(
            "holdfast_http_requests",
            "HTTP requests, by method, route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "holdfast_http_request_duration_seconds",
            "HTTP request handling time, by method and route",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "holdfast_gateway_rate_limited",
            "Requests refused by a rate limit, by bucket kind (key or address)",
            ["kind"],
            registry=self.registry,
        )
        self.rate_limit_unchecked = Counter(
            "holdfast_gateway_rate_limit_unchecked",
            "Requests whose rate limit could not be checked (Redis down)",
            registry=self.registry,
        )
        self.keys_in_grace = Counter(
            "holdfast_gateway_keys_served_in_grace",
            "Requests whose API key was taken as last read because the key store"
            " (Postgres) was unreachable",
            registry=self.registry,
        )
        self.sse_subscribers = Counter(
            "holdfast_gateway_sse_connections",
            "Availability streams opened",
            registry=self.registry,
        )
