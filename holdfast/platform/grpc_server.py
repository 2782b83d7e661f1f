"""The gRPC bootstrap every service uses: interceptors, health, reflection,
graceful shutdown, and client channels that carry the same context."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry.instrumentation.grpc import aio_client_interceptors, aio_server_interceptor
from opentelemetry.instrumentation.grpc.filters import negate, service_name

from holdfast.platform.interceptors import ClientCorrelationInterceptor, ServerContextInterceptor
from holdfast.platform.metrics import RpcMetrics
from holdfast.platform.telemetry import exporting
from holdfast.platform.workers import this_worker

log = logging.getLogger(__name__)

Registrar = Callable[[grpc.aio.Server], None]

_MAX_CONNECTION_AGE_MS = 5 * 60 * 1000


class GrpcHost:
    """One aio server with the shared interceptors, health checking and reflection.

    `service_names` are the fully qualified services `register` adds; each gets
    its own health status next to the server-wide "" entry. The "" entry is
    liveness: SERVING from start until shutdown. Each service's own entry is
    readiness: NOT_SERVING as well while the service cannot do its work (its
    database is away; `set_ready`).
    """

    def __init__(
        self,
        *,
        service_names: Sequence[str],
        register: Registrar,
        error_domain: str,
        host: str,
        port: int,
        grace_seconds: float,
        metrics: RpcMetrics | None = None,
    ) -> None:
        self._service_names = list(service_names)
        self._address = f"{host}:{port}"
        self._grace = grace_seconds
        self.health = health.aio.HealthServicer()
        self.server = grpc.aio.server(
            interceptors=_interceptors(error_domain, metrics),
            options=[
                # Off for a single worker, so that a port another process
                # holds is refused at start; several workers of the service
                # share it (the parent has checked it free: .workers).
                ("grpc.so_reuseport", 1 if this_worker().shares_ports else 0),
                # Clients reconnect every few minutes, and so re-resolve their
                # target: replicas added since get their share of the calls.
                ("grpc.max_connection_age_ms", _MAX_CONNECTION_AGE_MS),
                ("grpc.max_connection_age_grace_ms", int(grace_seconds * 1000)),
            ],
        )
        register(self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            [*self._service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server
        )
        self.port = 0

    async def start(self) -> int:
        """Binds (port 0 picks a free one), starts serving; returns the bound port."""
        self.port = self.server.add_insecure_port(self._address)
        await self.server.start()
        for name in ["", *self._service_names]:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("gRPC server listening", extra={"address": self._address, "port": self.port})
        return self.port

    async def set_ready(self, ready: bool) -> None:
        """Readiness: every service's own entry, never the "" (liveness) one.
        Ignored once shutting down (everything is NOT_SERVING then)."""
        status = health_pb2.HealthCheckResponse
        for name in self._service_names:
            await self.health.set(name, status.SERVING if ready else status.NOT_SERVING)

    async def stop(self) -> None:
        """NOT_SERVING first so load balancers stop sending, then drain in-flight calls."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(self._grace)


def _interceptors(
    error_domain: str, metrics: RpcMetrics | None
) -> list[grpc.aio.ServerInterceptor]:
    """The OpenTelemetry instrumentation while spans are exported; without an
    exporter nothing would be recorded, and ServerContextInterceptor itself
    carries the trace context through at a fraction of the cost."""
    if not exporting():
        return [ServerContextInterceptor(error_domain, metrics, starts_span=True)]
    return [
        # Health checks are left out of traces: they are noise there, and
        # the instrumentation cannot wrap the aio health servicer's Watch
        # (a coroutine writing to its context, not an async generator).
        aio_server_interceptor(  # type: ignore[no-untyped-call]
            filter_=negate(service_name(health.SERVICE_NAME))
        ),
        ServerContextInterceptor(error_domain, metrics),
    ]


def open_channel(target: str) -> grpc.aio.Channel:
    """A client channel that propagates trace context, baggage and correlation id.

    Calls are spread over every address the target resolves to (round robin):
    behind a headless Kubernetes Service, that is every replica. Reconnect
    backoff is capped at 2 s (gRPC's default grows to 2 minutes): a service
    that restarted is used again within seconds.
    """
    return grpc.aio.insecure_channel(
        target,
        options=[
            ("grpc.initial_reconnect_backoff_ms", 200),
            ("grpc.min_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", 2000),
            ("grpc.lb_policy_name", "round_robin"),
        ],
        interceptors=[
            # Health checks (readiness probes) would each be a trace of their own.
            *aio_client_interceptors(  # type: ignore[no-untyped-call]
                filter_=negate(service_name(health.SERVICE_NAME))
            ),
            ClientCorrelationInterceptor(),
        ],
    )
