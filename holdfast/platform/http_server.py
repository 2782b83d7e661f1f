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

from holdfast.platform.workers import this_worker

log = logging.getLogger(__name__)


# How often a stopping server looks whether its connections are done.
_DRAIN_POLL_SECONDS = 0.01


class _EmbeddedServer(uvicorn.Server):
    """uvicorn's server, told to stop by `stop_now` and noticing it at once:
    uvicorn itself looks every 0.1 s, and polls its connections as slowly
    while it drains, which made every stop take 0.15-0.3 s even with nothing
    to drain (services, and tests, start and stop servers often)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._stop_asked = asyncio.Event()

    def stop_now(self) -> None:
        self.should_exit = True
        self._stop_asked.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def main_loop(self) -> None:
        # on_tick refreshes the Date header when its counter is a multiple of
        # 10 (once a second at uvicorn's 0.1 s ticks): here, once a second too.
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 10) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_asked.wait(), 1.0)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # As uvicorn 0.54's, polling faster and without its fixed 0.1 s pause.
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        try:
            await asyncio.wait_for(self._drained(), self.config.timeout_graceful_shutdown)
        except TimeoutError:
            log.error(
                "cancelling %d request(s) still running after the graceful shutdown time",
                len(self.server_state.tasks),
            )
            for task in self.server_state.tasks:
                task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
        if not self.force_exit:
            await self.lifespan.shutdown()

    async def _drained(self) -> None:
        """Returns once the responses in flight are sent and their
        connections closed."""
        state = self.server_state
        # uvicorn signals nothing when its last connection closes: polled.
        while (state.connections or state.tasks) and not self.force_exit:  # noqa: ASYNC110
            await asyncio.sleep(_DRAIN_POLL_SECONDS)
        for server in self.servers:
            await server.wait_closed()


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
        # SO_REUSEPORT only where workers share the port (their parent has
        # checked it free): a single worker is refused a taken port.
        sock = socket.create_server((self._host, self._port), reuse_port=this_worker().shares_ports)
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
            # httptools (llhttp, in C) parses requests for a fraction of h11's
            # CPU (pure Python): measured on the gateway, docs/benchmarks.md.
            # Strictly: no leniency, which would take "Transfer-Encoding :"
            # as framing (request smuggling); a control byte in a value is a 400.
            http="httptools",
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
        server.stop_now()
        try:
            await asyncio.wait_for(asyncio.shield(task), self._grace + 1)
        except TimeoutError:
            server.force_exit = True
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
