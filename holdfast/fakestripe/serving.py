"""Serving an ASGI app from inside a running asyncio program (uvicorn, embedded).

The fake Stripe runs in the tests' own event loop, and so do the tests'
webhook receivers: no subprocess to wait for, and a port of its own (0 picks
a free one) known before the first request.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator

import uvicorn
from starlette.types import ASGIApp

# How long stop() lets requests in flight finish before cutting them off.
GRACEFUL_STOP_SECONDS = 2.0


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The embedding program owns SIGINT and SIGTERM: Ctrl-C during a test
        # run must stop the run, not quietly stop this server alone.
        yield


class HttpServer:
    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> int:
        """Binds (a bind failure raises here, as OSError), starts serving,
        and returns the port."""
        if self._task is not None:
            raise RuntimeError("already started")
        # Bound here rather than by uvicorn, which answers a taken port with
        # sys.exit() inside its task.
        sock = socket.create_server((self.host, self.requested_port))
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self.app,
            log_config=None,
            access_log=False,
            lifespan="off",
            http="h11",
            ws="none",
            timeout_graceful_shutdown=int(GRACEFUL_STOP_SECONDS),
        )
        self._server = _EmbeddedServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="http-server")
        while not self._server.started:
            if self._task.done():
                sock.close()
                await self._task  # raises what stopped it
                raise RuntimeError("the HTTP server stopped while starting")
            await asyncio.sleep(0.005)
        return self.port

    async def stop(self) -> None:
        if self._task is None or self._server is None:
            return
        task, server = self._task, self._server
        self._task = self._server = None
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(task), GRACEFUL_STOP_SECONDS + 1)
        except TimeoutError:
            server.force_exit = True
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
