"""How every service process runs: JSON logs, telemetry, then the service
until SIGTERM or SIGINT, stopped gracefully; or, with
HOLDFAST_<SERVICE>_WORKERS above 1, several such processes sharing its ports
(holdfast.platform.workers)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Protocol

import uvloop

from holdfast.platform.config import PlatformSettings
from holdfast.platform.logging import configure_logging
from holdfast.platform.telemetry import configure_telemetry, shutdown_telemetry
from holdfast.platform.workers import SharedPort, is_worker, run_workers
from holdfast.registry import BY_NAME, ServiceEntry

log = logging.getLogger(__name__)


class Service(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


async def run_until_signalled(
    start: Callable[[], Awaitable[None]], stop: Callable[[], Awaitable[None]]
) -> None:
    """Runs a service until SIGTERM or SIGINT, then stops it gracefully."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await start()
    await stopping.wait()
    log.info("shutting down: draining in-flight calls")
    await stop()
    log.info("stopped")


def run_service(name: str, settings: PlatformSettings, build: Callable[[], Service]) -> None:
    """The whole `main` of a service: `name` names its log lines and, as
    holdfast-<name>, its spans (unless OTEL_SERVICE_NAME says otherwise)."""
    configure_logging(name, settings.log_level, settings.access_log)
    entry = BY_NAME[name]
    workers = int(getattr(settings, entry.workers))
    if workers > 1 and not is_worker():
        sys.exit(run_workers(entry.module, workers, _shared_ports(entry, settings)))
    configure_telemetry(f"holdfast-{name}")

    async def serve() -> None:
        service = build()
        await run_until_signalled(service.start, service.stop)

    try:
        uvloop.run(serve())
    finally:
        shutdown_telemetry()


def _shared_ports(entry: ServiceEntry, settings: PlatformSettings) -> list[SharedPort]:
    """The ports a service's workers share: its gRPC one and its HTTP one."""
    ports = []
    if entry.grpc_port is not None:
        port = int(getattr(settings, entry.grpc_port))
        ports.append(SharedPort(entry.grpc_port, settings.grpc_host, port, "gRPC"))
    if entry.http_port is not None and entry.http_host is not None:
        host, port = getattr(settings, entry.http_host), int(getattr(settings, entry.http_port))
        ports.append(SharedPort(entry.http_port, host, port, "HTTP"))
    return ports
