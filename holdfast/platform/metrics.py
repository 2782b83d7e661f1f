"""Prometheus metrics: one registry per service instance, served over HTTP.

Each service builds its metrics on its own `CollectorRegistry` rather than the
process-wide default, so two instances in one process (the tests run several
replicas side by side) count separately.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from threading import Thread
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import asyncpg
from prometheus_client import CollectorRegistry, Counter, Histogram, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from holdfast.platform.workers import this_worker, worker_metrics_port

# Fits what the benchmarks measured (docs/benchmarks.md): cache hits well
# under a millisecond, holds and webhook acknowledgements in milliseconds to
# tens of milliseconds, an overloaded gateway in seconds. The design's
# targets (5 ms, 50 ms, 100 ms, 1 s) are bucket bounds, so the share of
# requests within a target is read exactly rather than interpolated.
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
        # The labelled series per (method, code), found once: `labels()` takes
        # a lock and builds a key on every call.
        self._series: dict[tuple[str, str], tuple[Counter, Histogram]] = {}

    def observe(self, method: str, code: str, seconds: float) -> None:
        series = self._series.get((method, code))
        if series is None:
            series = (self.requests.labels(method, code), self.latency.labels(method))
            self._series[(method, code)] = series
        series[0].inc()
        series[1].observe(seconds)


class PoolMetrics(Collector):
    """The service's asyncpg pool, read at each scrape: connections in use
    and idle, and the most it may open. A pool always at its maximum with
    calls waiting is the first sign the service (or Postgres) is the limit."""

    def __init__(self, registry: CollectorRegistry, pool: Callable[[], asyncpg.Pool | None]):
        self._pool = pool
        registry.register(self)

    def collect(self) -> Iterator[Metric]:
        connections = GaugeMetricFamily(
            "holdfast_db_pool_connections",
            "Postgres connections of the service's pool, by state (in_use, idle)",
            labels=["state"],
        )
        maximum = GaugeMetricFamily(
            "holdfast_db_pool_max_connections", "The most connections the pool may open"
        )
        pool = self._pool()
        if pool is not None:
            size, idle = pool.get_size(), pool.get_idle_size()
            connections.add_metric(["in_use"], size - idle)
            connections.add_metric(["idle"], idle)
            maximum.add_metric([], pool.get_max_size())
        yield connections
        yield maximum


class WorkerInfo(Collector):
    """Which of its service's worker processes answered the scrape (worker,
    workers, pid): with several workers, each counts only its own calls."""

    def __init__(self, registry: CollectorRegistry) -> None:
        registry.register(self)

    def collect(self) -> Iterator[Metric]:
        worker = this_worker()
        info = GaugeMetricFamily(
            "holdfast_worker_info",
            "This worker process of the service: always 1",
            labels=["worker", "workers", "pid"],
        )
        info.add_metric([str(worker.index), str(worker.count), str(os.getpid())], 1)
        yield info


# How soon the serving thread notices a stop (socketserver's default, 0.5 s,
# made every stop of a service wait that long, its event loop blocked).
_STOP_POLL_SECONDS = 0.02


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """A scrape is not worth a log line."""


def _server_class(host: str, port: int) -> type[WSGIServer]:
    """A threading WSGI server of the address family `host` is (IPv4 or 6)."""
    family = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM)[0][0]
    return type("MetricsWSGIServer", (ThreadingWSGIServer,), {"address_family": family})


class MetricsServer:
    """Serves one registry as Prometheus text on `/metrics` from a thread
    (as prometheus_client's start_http_server does, quicker to stop)."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        self._registry = registry
        WorkerInfo(registry)
        self._host = host
        # Each worker of a service on its own port (holdfast.platform.workers).
        self._port = worker_metrics_port(port)
        self._server: WSGIServer | None = None
        self._thread: Thread | None = None
        self.port = 0

    def start(self) -> int:
        """Starts serving unless the port is -1; returns the bound port (0 when off)."""
        if self._port < 0:
            return 0
        server = make_server(
            self._host,
            self._port,
            make_wsgi_app(self._registry),
            _server_class(self._host, self._port),
            handler_class=_QuietHandler,
        )
        thread = Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": _STOP_POLL_SECONDS},
            name="metrics-http",
            daemon=True,
        )
        thread.start()
        self._server, self._thread = server, thread
        self.port = server.server_port
        return self.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
