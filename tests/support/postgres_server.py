"""A Postgres of a test's own, which the test can stop and start again.

Tests of the database going away must never touch the run's shared Postgres
(every other test uses it), so this one is private: pgserver's bundled
binaries, a data folder of its own, a free TCP port on 127.0.0.1 (no unix
socket), trust authentication, user `postgres`.

    server = PostgresServer()
    await server.start()                   # initdb the first time, then start
    url = await server.create_database("holdfast", migrated=True)
    await server.stop("immediate")         # a crash: connections just drop
    await server.start()                   # same port, same data: it comes back
    await server.stop("fast")              # admin shutdown: clients get 57P01
    await server.close()                   # stopped if need be, folder deleted

    # A hot standby of it (a read replica), e.g. to provoke recovery conflicts:
    standby = await PostgresServer.standby_of(server, {"max_standby_streaming_delay": "0"})

The tests/conftest.py fixture `postgres_server` hands out a started one and
closes it afterwards. Every method that waits on pg_ctl runs it in a thread,
so services running in the test's event loop keep running meanwhile (a
blocking call would freeze them, and the outage with them). To cut
connections without stopping the server, put tests/support/tcp_proxy.py's
TcpProxy in front of it.

pg_ctl refuses to run as root; as root (containers, CI) the server runs as
the system user pgserver uses for the same reason (`pgserver`, created if
need be; util-linux's `setpriv` switches to it). Its folder is then a new
one under the system's temporary folder rather than pytest's tmp_path:
pytest takes other users' access to its base folder away whenever a session
starts (this run's or another's on the same machine), which would lock the
server out of its data.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import stat
import subprocess
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Literal

import asyncpg

from devtools.engines import free_port
from holdfast.migrate import migrate

StopMode = Literal["fast", "immediate"]

_PG_CTL_TIMEOUT = 60.0
_SQL_TIMEOUT = 10.0

# Throwaway data on a machine that does not crash: no fsync. Commits still
# reach the WAL before they are acknowledged (synchronous_commit stays on),
# so an immediate stop, a crash of Postgres alone, loses nothing committed.
_CONFIG = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = ''
max_connections = 100
fsync = off
full_page_writes = off
lc_messages = 'C'
"""


def _binaries() -> Path:
    with warnings.catch_warnings():
        # platformdirs warns on import when XDG_RUNTIME_DIR is unset.
        warnings.simplefilter("ignore")
        from pgserver import _commands

    path: Path = _commands.POSTGRES_BIN_PATH
    return path


def _system_user() -> str | None:
    """Who runs the server: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver.utils import ensure_user_exists

    ensure_user_exists("pgserver")
    return "pgserver"


def _hand_over(folder: Path, user: str) -> None:
    """Gives `folder` to `user`, and lets it traverse (not read) the folders above."""
    import pwd

    entry = pwd.getpwnam(user)
    os.chown(folder, entry.pw_uid, entry.pw_gid)
    for parent in folder.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


_template_lock = threading.Lock()
_template: Path | None = None


def _initdb_template() -> Path:
    """A data folder initdb made, once per process, for servers to copy (not
    to run); deleted when the process exits."""
    global _template
    with _template_lock:
        if _template is None:
            maker = PostgresServer()
            maker._prepare_folder()
            maker._run(
                "initdb",
                "-D", str(maker.data),
                "--auth=trust",
                "--username=postgres",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            )  # fmt: skip
            atexit.register(shutil.rmtree, maker.folder, ignore_errors=True)
            _template = maker.data
        return _template


class PostgresServer:
    def __init__(self, folder: Path | None = None) -> None:
        """`folder` holds the data and the log; by default a new temporary
        folder, deleted by `close`."""
        self._own_folder = folder is None
        self.folder = folder or Path(tempfile.mkdtemp(prefix="holdfast-postgres-"))
        self.data = self.folder / "data"
        self.log = self.folder / "postgres.log"
        self.port = free_port()
        self._user = _system_user()
        self._bin = _binaries()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    async def start(self) -> None:
        """Starts the server (creating its data folder the first time) on its
        port, and returns once it accepts connections."""
        await asyncio.to_thread(self._start)

    async def stop(self, mode: StopMode = "fast") -> None:
        """Stops the server; returns once it is gone.

        "fast" is an administrator's shutdown: open sessions are told
        `terminating connection due to administrator command` (57P01) and new
        ones are refused (`the database system is shutting down`, 57P03).
        "immediate" is a crash: connections drop without a word, and the next
        start recovers from the WAL.
        """
        await asyncio.to_thread(self._pg_ctl, "-m", mode, "-w", "stop")

    @classmethod
    async def standby_of(
        cls, primary: PostgresServer, settings: dict[str, str] | None = None
    ) -> PostgresServer:
        """A hot standby streaming from `primary` (a base backup of it), on a
        port of its own, started; `settings` go to its postgresql.conf."""
        standby = cls()
        try:
            await asyncio.to_thread(standby._copy, primary, settings or {})
            await standby.start()
        except BaseException:
            await standby.close()
            raise
        return standby

    async def close(self) -> None:
        """Stops it at once if it runs, and deletes the folder it made."""
        if self.running:
            await self.stop("immediate")
        if self._own_folder:
            await asyncio.to_thread(shutil.rmtree, self.folder, ignore_errors=True)

    async def create_database(self, name: str, *, migrated: bool = False) -> str:
        """Creates database `name` (migrated to the project's schema if asked),
        in place of one of that name an earlier test left; returns its URL."""
        admin = await asyncpg.connect(self.url(), timeout=_SQL_TIMEOUT)
        try:
            # CREATE DATABASE takes no parameters; the name is the test's own.
            await admin.execute(
                f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', timeout=_SQL_TIMEOUT
            )
            await admin.execute(f'CREATE DATABASE "{name}"', timeout=_SQL_TIMEOUT)
        finally:
            await admin.close(timeout=_SQL_TIMEOUT)
        url = self.url(name)
        if migrated:
            await migrate(url)
        return url

    def _start(self) -> None:
        if not (self.data / "PG_VERSION").exists():
            self._initdb()
        self._pg_ctl("-l", str(self.log), "-w", "-t", str(int(_PG_CTL_TIMEOUT)), "start")

    def _initdb(self) -> None:
        """A new data folder: a copy of one initdb made for this process (an
        initdb takes most of a second; a copy, a few milliseconds)."""
        self._prepare_folder()
        self._run_as_server_user(["cp", "-a", str(_initdb_template()), str(self.data)])
        with (self.data / "postgresql.conf").open("a") as config:
            config.write(_CONFIG.format(port=self.port))

    def _copy(self, primary: PostgresServer, settings: dict[str, str]) -> None:
        self._prepare_folder()
        self._run(
            "pg_basebackup",
            "-D", str(self.data),
            "-h", "127.0.0.1",
            "-p", str(primary.port),
            "-U", "postgres",
            # Streams from the primary once started (standby.signal, primary_conninfo).
            "--write-recovery-conf",
            "--wal-method=stream",
            "--checkpoint=fast",
            "--no-sync",
        )  # fmt: skip
        extra = "".join(f"{name} = '{value}'\n" for name, value in settings.items())
        with (self.data / "postgresql.conf").open("a") as config:
            config.write(_CONFIG.format(port=self.port) + extra)

    def _prepare_folder(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            _hand_over(self.folder, self._user)

    def _pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.data), *args)

    def _run(self, program: str, *args: str) -> None:
        self._run_as_server_user([str(self._bin / program), *args])

    def _run_as_server_user(self, argv: list[str]) -> None:
        program, args = Path(argv[0]).name, argv[1:]
        if self._user is not None:
            # setpriv rather than subprocess's user=: with user= Python must
            # fork() instead of vfork(), and fork() in a process running gRPC
            # (its fork handlers) can crash the child. The group too: a
            # process left in group root would be judged by the group bits
            # of root's folders, which let nobody through.
            argv = [
                "setpriv", f"--reuid={self._user}", f"--regid={self._user}", "--clear-groups",
                "--", *argv,
            ]  # fmt: skip
        # Output to a file, not a pipe: the server pg_ctl starts could keep a
        # pipe open and the call would never return.
        with tempfile.TemporaryFile() as output:
            done = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=_PG_CTL_TIMEOUT,
                check=False,
            )
            output.seek(0)
            said = output.read().decode(errors="replace")
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{program} {' '.join(args)} failed ({done.returncode}):\n{said}\n{log}"
            )
