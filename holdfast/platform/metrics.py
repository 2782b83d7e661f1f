"""Prometheus metrics: one registry per service instance, served over HTTP.

Each service builds its metrics on its own `CollectorRegistry` rather than the
process-wide default, so two instances in one process (the tests run several
replicas side by side) count separately.
"""

from __future__ import annotations

from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

# Fits what the services measure: sub-millisecond cache hits up to multi-second
# lock waits.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


class RpcMetrics:
    """RED metrics per gRPC method: requests by status code, and latency."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "holdfast_grpc_requests",
            "gRPC requests handled, by method and status code",
            ["method", "code"],
            registry=registry,
        )
        self.latency = Histogram(
            "holdfast_grpc_request_duration_seconds",
            "gRPC request handling time, by method",
            ["method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    def observe(self, method: str, code: str, seconds: float) -> None:
        self.requests.labels(method, code).inc()
        self.latency.labels(method).observe(seconds)


class MetricsServer:
    """Serves one registry as Prometheus text on `/metrics` from a thread."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        self._registry = registry
        self._host = host
        self._port = port
        self._server: WSGIServer | None = None
        self._thread: Thread | None = None
        self.port = 0

    def start(self) -> int:
        """Starts serving unless the port is -1; returns the bound port (0 when off)."""
        if self._port < 0:
            return 0
        self._server, self._thread = start_http_server(
            self._port, addr=self._host, registry=self._registry
        )
        self.port = self._server.server_port
        return self.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
