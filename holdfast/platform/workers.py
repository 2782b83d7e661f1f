"""Several worker processes of one service on one host, sharing its ports.

`HOLDFAST_<SERVICE>_WORKERS` (e.g. HOLDFAST_BOOKING_WORKERS=4) above 1 makes
the process started as the service a parent that runs that many workers,
each `python -m <module>` again, each a whole service exactly as a replica
is (its own event loop, pools, caches and background jobs), and serves
nothing itself. Python runs one thread of Python at a time: processes are
how a service uses more than one core without more containers.

Ports. The workers share the service's gRPC and HTTP ports through
SO_REUSEPORT (the kernel spreads new connections over them). SO_REUSEPORT
would also let a second copy of the service, or anything else setting it,
join a port already served, where a single worker (which never sets it)
is refused at once. So the parent first binds each port itself without
SO_REUSEPORT: a port anyone holds is refused, clearly, before a worker
starts; then it lets go and the workers bind. Port 0 (pick a free one) is
picked by the parent, so that every worker takes the same port.

Metrics. Each worker serves its own /metrics (its own counters): worker i
on the metrics port + 100 * i (9101, 9201, 9301...), so workers of the
services on neighbouring ports (9101, 9102, 9103) never meet. The
gateway's /metrics is on its API port: it says the worker that answered
(`holdfast_worker_info`).

Stopping. SIGTERM or SIGINT to the parent is passed to every worker, each
stopping gracefully as a single service does; the parent returns when all
have. A worker that ends on its own ends the others too, and the parent
exits non-zero: the orchestrator restarts the whole, as it would a single
process (restarting workers quietly would hide a crash loop).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType

log = logging.getLogger(__name__)

# Set by the parent in each worker's environment: "<index>/<count>".
WORKER_ENV = "HOLDFAST_WORKER"
METRICS_PORT_STRIDE = 100


@dataclass(frozen=True)
class Worker:
    index: int
    count: int

    @property
    def shares_ports(self) -> bool:
        """Whether its ports are shared with other workers (SO_REUSEPORT)."""
        return self.count > 1


def this_worker() -> Worker:
    """Which worker this process is: 0 of 1 unless a parent started it."""
    index, _, count = os.environ.get(WORKER_ENV, "0/1").partition("/")
    return Worker(int(index), int(count))


def is_worker() -> bool:
    """Whether a parent started this process as one of its workers."""
    return WORKER_ENV in os.environ


def worker_metrics_port(port: int) -> int:
    """This worker's metrics port: `port` for worker 0, then a stride up per
    worker; 0 (a free port) and -1 (none) are the same for every worker."""
    if port <= 0:
        return port
    return port + METRICS_PORT_STRIDE * this_worker().index


@dataclass(frozen=True)
class SharedPort:
    """A port the workers share, and the setting it comes from."""

    setting: str  # e.g. booking_port, read from HOLDFAST_BOOKING_PORT
    host: str
    port: int
    kind: str  # "gRPC" or "HTTP", for the messages


class PortTaken(Exception):
    pass


def claim_port(shared: SharedPort) -> int:
    """Binds the port once without SO_REUSEPORT, as a single worker would,
    and lets it go; the port to give the workers (a free one for port 0).
    PortTaken if anything holds it."""
    host = shared.host.strip("[]") or None
    try:
        infos = socket.getaddrinfo(
            host, shared.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        family, _, _, _, address = infos[0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
            probe.listen()
            return int(probe.getsockname()[1])
    except OSError as error:
        raise PortTaken(
            f"the {shared.kind} port {shared.host}:{shared.port} "
            f"(HOLDFAST_{shared.setting.upper()}) cannot be bound: {error.strerror or error}"
        ) from None


def run_workers(module: str, count: int, ports: Sequence[SharedPort]) -> int:
    """Runs `count` workers of `python -m module` until they end; the exit
    status for the parent (non-zero when a port is taken or a worker failed)."""
    env = dict(os.environ)
    try:
        for shared in ports:
            env[f"HOLDFAST_{shared.setting.upper()}"] = str(claim_port(shared))
    except PortTaken as error:
        log.error("not starting: %s", error)
        return 1
    return _Supervisor(module, count, env).run()


class _Supervisor:
    def __init__(self, module: str, count: int, env: dict[str, str]) -> None:
        self._module = module
        self._count = count
        self._env = env
        self._alive: dict[int, int] = {}  # pid -> worker index
        self._stopping = False
        self._status = 0

    def run(self) -> int:
        # Before the first worker exists, so none misses a signal.
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        for index in range(self._count):
            if self._stopping:
                break
            self._start(index)
        log.info("workers started", extra={"workers": sorted(self._alive)})
        while self._alive:
            pid, wait_status = os.wait()
            if pid in self._alive:
                self._ended(self._alive.pop(pid), pid, os.waitstatus_to_exitcode(wait_status))
        return self._status

    def _start(self, index: int) -> None:
        env = {**self._env, WORKER_ENV: f"{index}/{self._count}"}
        # This very interpreter, on a module named in holdfast.registry.
        process = subprocess.Popen([sys.executable, "-m", self._module], env=env)  # noqa: S603 - our own modules
        self._alive[process.pid] = index
        # os.wait reaps it; Popen must not wait for it again.
        process.returncode = 0

    def _ended(self, index: int, pid: int, code: int) -> None:
        if self._stopping:
            if code != 0:
                log.warning("worker %d (pid %d) stopped with status %d", index, pid, code)
                self._status = self._status or 1
            return
        log.error("worker %d (pid %d) ended with status %d: stopping the others", index, pid, code)
        self._status = code or 1
        self._stop_all(signal.SIGTERM)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("shutting down: stopping %d worker(s)", len(self._alive))
        self._stop_all(signum)

    def _stop_all(self, signum: int) -> None:
        self._stopping = True
        for pid in list(self._alive):
            with contextlib.suppress(ProcessLookupError):  # ended meanwhile
                os.kill(pid, signum)
