"""Starting services as separate processes, the way they run in production."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devtools.engines import tail
from tests.support.env import REDIS_PREFIX, redis_url


def service_env(database_url: str, **settings: str) -> dict[str, str]:
    """The environment of a service process in this test run; `settings` are
    more HOLDFAST_* variables, named without the prefix (booking_port=...)."""
    return {
        "HOLDFAST_DATABASE_URL": database_url,
        "HOLDFAST_REDIS_URL": redis_url(),
        "HOLDFAST_REDIS_PREFIX": REDIS_PREFIX,
        "HOLDFAST_GRPC_HOST": "127.0.0.1",
        # Metrics on a free port each, so processes never collide.
        "HOLDFAST_BOOKING_METRICS_PORT": "0",
        "HOLDFAST_AVAILABILITY_METRICS_PORT": "0",
        **{f"HOLDFAST_{name.upper()}": value for name, value in settings.items()},
    }


def start_service(module: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Runs `python -m module` with `env` added to this process's environment."""
    with log.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", module],
            env={**os.environ, **env},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


async def wait_until_serving(
    target: str, process: subprocess.Popen[bytes], log: Path, deadline: float = 30.0
) -> None:
    """Polls gRPC health until SERVING; fails with the service's log if it dies."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    async with grpc.aio.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while loop.time() < end:
            if process.poll() is not None:
                raise AssertionError(f"service exited early:\n{tail(log)}")
            try:
                response = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if response.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"service not serving after {deadline}s:\n{tail(log)}")
