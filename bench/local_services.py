"""Services of a benchmark's own: separate processes, as in production, on a
fresh database of their own (dropped afterwards) and their own Redis prefix.

For benchmarks that must choose what the services talk to (a fake Stripe the
benchmark makes slow or unreachable) or how they are configured (a short
outbox retention), which a shared `make up` stack cannot offer. Postgres and
Redis are given by URL, or taken from the environment `make up` or
`python -m devtools testenv` sets.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devtools.engines import free_port, tail
from holdfast.migrate import migrate

STARTUP_SECONDS = 30.0
STOP_SECONDS = 30.0


def engine_urls(database_url: str | None, redis_url: str | None) -> tuple[str, str]:
    """The URLs given, else HOLDFAST_DATABASE_URL / HOLDFAST_REDIS_URL (`make
    up`'s .state/up.env), else the HOLDFAST_TEST_* ones (`python -m devtools testenv`)."""
    env = os.environ
    database = (
        database_url or env.get("HOLDFAST_DATABASE_URL") or env.get("HOLDFAST_TEST_DATABASE_URL")
    )
    redis = redis_url or env.get("HOLDFAST_REDIS_URL") or env.get("HOLDFAST_TEST_REDIS_URL")
    if not database or not redis:
        raise SystemExit(
            "no Postgres or Redis: pass --database-url and --redis-url, or run under"
            " `python -m devtools testenv -- ...` (or with `make up`'s .state/up.env sourced)"
        )
    return database, redis


@contextlib.asynccontextmanager
async def fresh_database(server_url: str, label: str) -> AsyncIterator[str]:
    """A new database on the server `server_url` reaches, migrated; dropped after."""
    name = f"hf_{label}_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server_url, timeout=10)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))
    try:
        await migrate(url)
        yield url
    finally:
        admin = await asyncpg.connect(server_url, timeout=10)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@dataclass
class ServiceProcess:
    """`python -m <module>` with HOLDFAST_* settings, its output in `log`."""

    module: str
    port: int
    metrics_port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @classmethod
    def start(cls, module: str, name: str, log: Path, settings: dict[str, str]) -> ServiceProcess:
        """`name` is the service's port settings' prefix ("booking", "availability")."""
        port, metrics_port = free_port(), free_port()
        env = {
            **os.environ,
            "HOLDFAST_GRPC_HOST": "127.0.0.1",
            "HOLDFAST_METRICS_HOST": "127.0.0.1",
            f"HOLDFAST_{name.upper()}_PORT": str(port),
            f"HOLDFAST_{name.upper()}_METRICS_PORT": str(metrics_port),
            "HOLDFAST_ACCESS_LOG": "false",
            "HOLDFAST_LOG_LEVEL": "WARNING",
            **{f"HOLDFAST_{key.upper()}": value for key, value in settings.items()},
        }
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", module], env=env, stdout=sink, stderr=subprocess.STDOUT
            )
        return cls(module, port, metrics_port, process, log)

    async def wait_until_serving(self) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + STARTUP_SECONDS
        async with grpc.aio.insecure_channel(self.target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while loop.time() < end:
                if self.process.poll() is not None:
                    raise SystemExit(f"{self.module} exited while starting:\n{tail(self.log)}")
                with contextlib.suppress(grpc.aio.AioRpcError):
                    response = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if response.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                await asyncio.sleep(0.1)
        raise SystemExit(f"{self.module} not serving after {STARTUP_SECONDS} s:\n{tail(self.log)}")

    async def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.process.wait, STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                await asyncio.to_thread(self.process.wait)
