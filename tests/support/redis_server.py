"""A redis-server of a test's own, which the test can kill and start again."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from redis.asyncio import Redis

from devtools.engines import free_port, start_redis_server


class RedisServer:
    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Starts it (again) on the same port, empty, as after a crash without persistence."""
        self._process = start_redis_server(self._folder, self.port)

    def pause(self) -> None:
        """SIGSTOP: connections stay open and every call hangs, as on a host
        that stopped answering; `resume` lets the calls in flight complete."""
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL: no goodbye to the clients, as when a Redis host dies."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None


async def script_calls(client: Redis) -> int:
    """How many Lua scripts the server has run (EVALSHA, and EVAL when a
    script was not cached yet)."""
    stats = await client.info("commandstats")
    return sum(
        int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("evalsha", "eval")
    )
