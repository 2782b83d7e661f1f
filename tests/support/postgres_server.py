"""A PostgreSQL server of a test's own, which the test can stop and start again.

It runs the binaries pgserver bundles (the same Postgres 16 `holdfast testenv`
embeds) on a free TCP port, with its data in a fresh folder, so a test can
take the database away from running services and give it back on the same
address with the same data, as when a database host restarts or fails over.
The run's shared Postgres is never touched.

pg_ctl refuses to run as root; as holdfast.engines does, the server then runs
as the system user pgserver creates for that, and its data folder lives under
/tmp (pytest's own tmp folders are private to root).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import asyncpg

from holdfast.engines import free_port, tail

# Generous: the machine running the tests may be busy.
_PG_CTL_TIMEOUT = 60.0


def _bin() -> Path:
    with warnings.catch_warnings():
        # platformdirs warns on import when XDG_RUNTIME_DIR is unset.
        warnings.simplefilter("ignore")
        from pgserver import _commands

    path: Path = _commands.POSTGRES_BIN_PATH
    return path


def _system_user() -> str | None:
    """Who runs the server: us, unless we are root (pg_ctl refuses root)."""
    if os.geteuid() != 0:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver.utils import ensure_user_exists

    ensure_user_exists("pgserver")
    return "pgserver"


class PostgresServer:
    """`start()` (initialising the data folder the first time), `stop()` and
    `start()` again on the same port and data; `remove()` at the end."""

    def __init__(self) -> None:
        self.port = free_port()
        self._user = _system_user()
        self.folder = Path(tempfile.mkdtemp(prefix="holdfast-pg-"))
        self._data = self.folder / "data"
        self.log = self.folder / "postgres.log"
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        done = subprocess.run(
            [str(_bin() / args[0]), *args[1:]],
            user=self._user,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=_PG_CTL_TIMEOUT,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} failed:\n"
                f"{done.stdout.decode(errors='replace')}\n{tail(self.log)}"
            )

    def start(self) -> None:
        """Starts it and returns once it accepts connections."""
        if not (self._data / "PG_VERSION").exists():
            self._run(
                "initdb", "-D", str(self._data), "-U", "postgres", "--auth=trust", "-E", "UTF8"
            )
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                "-c unix_socket_directories=''",
                # Four services' pools and the test's own.
                "-c max_connections=200",
                # A killed server loses nothing the OS already has; only a
                # crash of the machine would, and then the test is gone too.
                "-c fsync=off",
            ]
        )
        self._run(
            "pg_ctl", "-D", str(self._data), "-l", str(self.log), "-o", options, "-w", "start"
        )

    def stop(self, mode: str = "immediate") -> None:
        """Stops it: "immediate" drops every connection at once, as a crash
        does (recovery runs at the next start); "fast" is a clean shutdown."""
        self._run("pg_ctl", "-D", str(self._data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        """Stops it if it runs, and deletes its data."""
        if (self._data / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    async def create_database(self, name: str) -> str:
        """A new database on it; returns its URL."""
        admin = await asyncpg.connect(self.url(), timeout=10)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        return self.url(name)
