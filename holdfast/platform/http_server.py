"""Serving an ASGI app with uvicorn inside a service's own event loop.

The service, not uvicorn, owns SIGTERM: uvicorn's signal capture is turned
off, and `stop` is called from the service's graceful shutdown like every
other part's. The socket is bound here rather than by uvicorn, which answers
a taken port with sys.exit() inside its task.
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


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class HttpHost:
    def __init__(
        self,
        app: ASGIApp,
        host: str,
        port: int,
        grace_seconds: float,
        *,
        trusted_proxies: str = "127.0.0.1",
    ) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._grace = grace_seconds
        # Whose X-Forwarded-For / -Proto to believe for the client's address.
        self._trusted_proxies = trusted_proxies
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None
        self.port = 0

    async def start(self) -> int:
        """Binds (port 0 picks a free one; a bind failure raises OSError here),
        starts serving and returns the bound port."""
        if self._task is not None:
            raise RuntimeError("already started")
        # uvicorn narrates its start and stop at INFO; the service logs its own.
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
        sock = socket.create_server((self._host, self._port))
        # Accepted connections inherit this. asyncio only sets it itself on
        # sockets made with proto=IPPROTO_TCP, which create_server's are not;
        # without it every response after the first on a kept-alive
        # connection waited ~40 ms for Nagle and delayed ACKs.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self._app,
            log_config=None,
            access_log=False,
            lifespan="off",
            http="h11",
            ws="none",
            timeout_graceful_shutdown=max(1, int(self._grace)),
            # Longer than any load balancer's idle timeout (AWS ALB: 60 s), so
            # the balancer, not us, closes idle connections: no 502 races.
            timeout_keep_alive=75,
            forwarded_allow_ips=self._trusted_proxies,
        )
        self._server = _EmbeddedServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="http-server")
        while not self._server.started:
            if self._task.done():
                sock.close()
                await self._task  # raises what stopped it
                raise RuntimeError("the HTTP server stopped while starting")
            await asyncio.sleep(0.005)
        log.info("HTTP server listening", extra={"host": self._host, "port": self.port})
        return self.port

    async def stop(self) -> None:
        """Stops accepting, lets requests in flight finish (within the grace
        period), then returns."""
        if self._task is None or self._server is None:
            return
        task, server = self._task, self._server
        self._task = self._server = None
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(task), self._grace + 1)
        except TimeoutError:
            server.force_exit = True
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
