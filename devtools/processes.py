"""The children of `python -m devtools up`: started with their settings and
their log in the state dir, waited for until ready (gRPC health, or HTTP
paths answering 200), and watched for an early exit."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devtools.engines import Engines, StackError, tail
from devtools.plan import Service

# How long a service may take to report SERVING before we give up.
READY_TIMEOUT = 30.0


def start_service(service: Service, found: Engines, state_dir: Path) -> subprocess.Popen[bytes]:
    env = {
        # A dev stack without authentication listens on loopback only, unless
        # HOLDFAST_GRPC_HOST / HOLDFAST_METRICS_HOST / HOLDFAST_WEBHOOKS_HTTP_HOST /
        # HOLDFAST_GATEWAY_HOST say otherwise (say, to reach it from outside a VM).
        "HOLDFAST_GRPC_HOST": "127.0.0.1",
        "HOLDFAST_METRICS_HOST": "127.0.0.1",
        "HOLDFAST_WEBHOOKS_HTTP_HOST": "127.0.0.1",
        "HOLDFAST_GATEWAY_HOST": "127.0.0.1",
        **os.environ,
        "HOLDFAST_DATABASE_URL": found.database_url,
        "HOLDFAST_REDIS_URL": found.redis_url,
        **(service.settings or {}),
    }
    # Its output goes to a file so the terminal keeps the walkthrough readable;
    # its own session so Ctrl-C reaches only us and we stop it in order.
    with (state_dir / service.log_name).open("wb") as output:
        try:
            return subprocess.Popen(  # noqa: S603 - our own modules
                [sys.executable, "-m", service.module],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise StackError(f"cannot start the {service.name} service: {exc}") from exc


def wait_until_ready(service: Service, process: subprocess.Popen[bytes], state_dir: Path) -> None:
    log = state_dir / service.log_name
    deadline = time.monotonic() + READY_TIMEOUT
    with contextlib.ExitStack() as resources:
        is_ready = _readiness_probe(service, resources)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise StackError(
                    f"the {service.name} service exited with code {process.returncode}"
                    f" while starting:\n{tail(log)}"
                )
            if is_ready():
                return
            time.sleep(0.2)
    raise StackError(
        f"the {service.name} service was not ready within {READY_TIMEOUT:.0f} s:\n{tail(log)}"
    )


def _readiness_probe(service: Service, resources: contextlib.ExitStack) -> Callable[[], bool]:
    """A check that says whether `service` is ready: its gRPC health entry is
    SERVING, or, for an HTTP server, each of its `ready_paths` answers 200."""
    if service.health_service is None:
        urls = [service.url + path for path in service.ready_paths]
        # No proxy for a loopback address, whatever http_proxy says.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

        def answers(url: str) -> bool:
            try:
                with opener.open(url, timeout=1) as response:
                    return bool(response.status == 200)
            except OSError:  # refused, or an HTTP error (urllib's HTTPError is one)
                return False

        return lambda: all(answers(url) for url in urls)

    request = health_pb2.HealthCheckRequest(service=service.health_service)
    channel = resources.enter_context(grpc.insecure_channel(service.target))
    health = health_pb2_grpc.HealthStub(channel)

    def serving() -> bool:
        try:
            response = health.Check(request, timeout=1)
        except grpc.RpcError:
            return False
        return bool(response.status == health_pb2.HealthCheckResponse.SERVING)

    return serving


def wait_for_an_exit(
    running: list[tuple[Service, subprocess.Popen[bytes]]],
) -> tuple[Service, int]:
    """Blocks until one of the services exits (they should not: only a signal ends `up`)."""
    while True:
        for service, process in running:
            returncode = process.poll()
            if returncode is not None:
                return service, returncode
        time.sleep(0.5)
