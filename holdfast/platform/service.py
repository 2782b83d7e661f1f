"""How every service process runs: JSON logs, telemetry, then the service
until SIGTERM or SIGINT, stopped gracefully."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Protocol

import uvloop

from holdfast.platform.config import PlatformSettings
from holdfast.platform.logging import configure_logging
from holdfast.platform.telemetry import configure_telemetry, shutdown_telemetry

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
    configure_telemetry(f"holdfast-{name}")

    async def serve() -> None:
        service = build()
        await run_until_signalled(service.start, service.stop)

    try:
        uvloop.run(serve())
    finally:
        shutdown_telemetry()
