"""A TCP proxy a test can cut and restore: a dependency going down and coming
back (the database under the webhook service, the booking service under the
processor) without touching the real server.

It can also make the server slow (`answer_delay`: each answer reaches the
client that much later) or hold its answers back (`hold_answers`): the
server did the work, the client never hears of it, as when a host dies
between doing and answering."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from devtools.engines import free_port

# Runs before each chunk is passed on (and may wait).
_Gate = Callable[[bytes], Awaitable[None]]


@dataclass
class _Exchange:
    """One connection's turn-taking: whether the client spoke since the
    server last answered (what makes the server's next bytes an answer)."""

    awaiting_answer: bool = False


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        # Seconds each answer is late; meant for request/answer protocols
        # such as HTTP/1.1, where the server speaks only when asked.
        self.answer_delay = 0.0
        self._answers_flow = asyncio.Event()
        self._answers_flow.set()
        # Bytes the client sent through, ever: a test can see a request go by.
        self.bytes_sent = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def __aenter__(self) -> TcpProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.release_answers()
        await self.cut()

    async def start(self) -> None:
        """Accepts connections (again) on the same port."""
        self._server = await asyncio.start_server(self._connect, "127.0.0.1", self.port)

    async def cut(self) -> None:
        """Refuses new connections and drops the open ones, as a dead host would."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for pipe in list(self._pipes):
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    def hold_answers(self) -> None:
        """From now on the server's bytes stay here until `release_answers`:
        requests still reach it, their answers do not come back."""
        self._answers_flow.clear()

    def release_answers(self) -> None:
        self._answers_flow.set()

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            return
        exchange = _Exchange()
        for pipe in (
            self._pipe(reader, up_writer, self._requests(exchange)),
            self._pipe(up_reader, writer, self._answers(exchange)),
        ):
            task = asyncio.create_task(pipe)
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    def _requests(self, exchange: _Exchange) -> _Gate:
        async def gate(data: bytes) -> None:
            self.bytes_sent += len(data)
            exchange.awaiting_answer = True

        return gate

    def _answers(self, exchange: _Exchange) -> _Gate:
        async def gate(data: bytes) -> None:
            await self._answers_flow.wait()
            if exchange.awaiting_answer and self.answer_delay:
                await asyncio.sleep(self.answer_delay)
            exchange.awaiting_answer = False

        return gate

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter, gate: _Gate) -> None:
        try:
            while data := await source.read(65536):
                await gate(data)
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            sink.close()
            with contextlib.suppress(ConnectionError, OSError):
                await sink.wait_closed()
