"""The processes holdfast is made of: the one list the local stack
(devtools), the test stack (tests/support) and the deploy checks read.

Each entry names its module and settings class as strings: the shared
library never imports a service or the gateway. Ports are named by their
setting (the default lives with the setting, in the service's config), and
each setting is read from HOLDFAST_<SETTING> (see `env`).

To add a service: an entry here, in start order (what it calls before it).
"""

from __future__ import annotations

from dataclasses import dataclass

ENV_PREFIX = "HOLDFAST_"


def env(setting: str) -> str:
    """The environment variable a setting is read from: booking_port -> HOLDFAST_BOOKING_PORT."""
    return f"{ENV_PREFIX}{setting.upper()}"


@dataclass(frozen=True)
class ServiceEntry:
    name: str
    # What runs it: python -m <module>.
    module: str
    # Its settings class, "module:Class".
    settings: str
    # The settings that hold its ports: gRPC (None for the gateway), the HTTP
    # one it serves (the webhook receiver, the gateway's API), and Prometheus'
    # (None: /metrics is on the HTTP port).
    grpc_port: str | None
    http_port: str | None
    metrics_port: str | None
    # How many worker processes it runs on one host (holdfast.platform.workers).
    workers: str
    # The grpc.health.v1 entry that says "ready" (NOT_SERVING while the
    # service cannot work; "" says "alive"). None for an HTTP service, ready
    # once GET on each of `ready_paths` answers 200.
    ready_health: str | None
    ready_paths: tuple[str, ...] = ()
    # The setting of the address its HTTP port listens on.
    http_host: str | None = None
    # Whose gRPC API it calls, at HOLDFAST_<callee>_TARGET.
    calls: tuple[str, ...] = ()

    @property
    def port_settings(self) -> tuple[str, ...]:
        """Every port setting it has, gRPC first."""
        named = (self.grpc_port, self.http_port, self.metrics_port)
        return tuple(setting for setting in named if setting is not None)


SERVICES = (
    ServiceEntry(
        "booking",
        "services.booking",
        "services.booking.config:BookingSettings",
        grpc_port="booking_port",
        http_port=None,
        metrics_port="booking_metrics_port",
        workers="booking_workers",
        ready_health="holdfast.booking.v1.BookingService",
    ),
    ServiceEntry(
        "availability",
        "services.availability",
        "services.availability.config:AvailabilitySettings",
        grpc_port="availability_port",
        http_port=None,
        metrics_port="availability_metrics_port",
        workers="availability_workers",
        ready_health="holdfast.availability.v1.AvailabilityService",
    ),
    ServiceEntry(
        "webhooks",
        "services.webhooks",
        "services.webhooks.config:WebhooksSettings",
        grpc_port="webhooks_port",
        http_port="webhooks_http_port",
        metrics_port="webhooks_metrics_port",
        workers="webhooks_workers",
        http_host="webhooks_http_host",
        ready_health="holdfast.webhooks.v1.WebhookAdminService",
        calls=("booking",),
    ),
    # The gateway serves /metrics, /healthz and /readyz on its API port; it
    # is ready once it runs and reaches the services it calls and Redis.
    ServiceEntry(
        "gateway",
        "gateway",
        "gateway.config:GatewaySettings",
        grpc_port=None,
        http_port="gateway_port",
        metrics_port=None,
        workers="gateway_workers",
        http_host="gateway_host",
        ready_health=None,
        ready_paths=("/healthz", "/readyz"),
        calls=("booking", "availability"),
    ),
)

BY_NAME = {entry.name: entry for entry in SERVICES}
