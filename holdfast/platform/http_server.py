"""Serving an ASGI app with uvicorn inside a service's own event loop.

The service, not uvicorn, owns SIGTERM: uvicorn's signal capture is turned
off, and `stop` is called from the service's graceful shutdown like every
other part's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Generator

import uvicorn
from starlette.types import ASGIApp

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class HttpHost:
    def __init__(self, app: ASGIApp, host: str, port: int, grace_seconds: float) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._grace = grace_seconds
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.port = 0

    async def start(self) -> int:
        """Binds (port 0 picks a free one) and serves; returns the bound port."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=max(1, int(self._grace)),
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="http-server")
        while not self._server.started:
            if self._task.done():
                await self._task  # raises why it could not start
            await asyncio.sleep(0.01)
        log.info("HTTP server listening", extra={"host": self._host, "port": self.port})
        return self.port

    async def stop(self) -> None:
        """Stops accepting, lets requests in flight finish, then returns."""
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
