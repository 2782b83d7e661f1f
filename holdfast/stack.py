"""The local stack: `holdfast up` (`make up`) and `holdfast testenv` (`make test`).

Both need a Postgres and a Redis, which holdfast.engines provides, configured
or embedded; `up` then migrates, runs the booking and availability services as
child processes and seeds the demo tenant (holdfast.demo).

This module supervises processes rather than serving requests, so it is plain
blocking code that reads top to bottom; Ctrl-C and SIGTERM both raise
KeyboardInterrupt, and on the way out (`finally`, an ExitStack) the children
are stopped in reverse order.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TextIO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from holdfast.demo import DEMO_TENANT, example_ids, seed_demo
from holdfast.engines import TESTENV, UP, Engines, StackError, engines, stop_child, tail
from holdfast.migrate import migrate

DEFAULT_BOOKING_PORT = 50051
DEFAULT_AVAILABILITY_PORT = 50052
DEFAULT_BOOKING_METRICS_PORT = 9101
DEFAULT_AVAILABILITY_METRICS_PORT = 9102
READY_LINE = "holdfast is up"
# In the state dir while `holdfast up` runs: the stack's URLs as shell exports.
ENV_FILE = "up.env"
# How long a service may take to report SERVING before we give up.
READY_TIMEOUT = 30.0


@dataclass(frozen=True)
class Service:
    """One service `holdfast up` runs as a child process."""

    # "booking" runs as `python -m services.booking`, set by HOLDFAST_BOOKING_*.
    name: str
    # The gRPC health entry that says it is ready.
    health_service: str
    port: int
    metrics_port: int  # -1: off

    @property
    def module(self) -> str:
        return f"services.{self.name}"

    @property
    def log_name(self) -> str:
        return f"{self.name}.log"

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        prefix = f"HOLDFAST_{self.name.upper()}"
        return {f"{prefix}_PORT": str(self.port), f"{prefix}_METRICS_PORT": str(self.metrics_port)}


# ---------------------------------------------------------------------------
# `holdfast testenv -- CMD ARGS...`


def testenv_main(argv: list[str]) -> int:
    if "--" in argv:
        split = argv.index("--")
        options, command = argv[:split], argv[split + 1 :]
    else:
        options, command = [], argv
    parser = argparse.ArgumentParser(
        prog="holdfast testenv",
        usage="holdfast testenv [--state-dir DIR] -- CMD [ARGS...]",
        description="Runs CMD with HOLDFAST_TEST_DATABASE_URL and HOLDFAST_TEST_REDIS_URL set,"
        " starting embedded engines for whichever is not set already.",
    )
    parser.add_argument("--state-dir", type=Path, default=Path(".state"))
    args = parser.parse_args(options)
    if not command:
        parser.error("give the command to run after --")

    try:
        with engines(TESTENV, args.state_dir.resolve()) as found:
            env = {
                **os.environ,
                TESTENV.database_url_env: found.database_url,
                TESTENV.redis_url_env: found.redis_url,
            }
            return _run_command(command, env)
    except KeyboardInterrupt:
        return 130
    except StackError as exc:
        print(f"holdfast testenv: {exc}", file=sys.stderr)
        return 1


def _run_command(command: list[str], env: dict[str, str]) -> int:
    try:
        child = subprocess.Popen(command, env=env)  # noqa: S603 - the caller's own command
    except OSError as exc:
        raise StackError(f"cannot run {command[0]}: {exc}") from exc
    # The terminal sends Ctrl-C to CMD too (it stays in our process group so
    # that `pytest --pdb` keeps the terminal), so we just wait for CMD to
    # finish before stopping the engines. A handler rather than SIG_IGN,
    # because an ignored SIGINT would be inherited by CMD's own children.
    signal.signal(signal.SIGINT, lambda signum, frame: None)
    # SIGTERM is sent to us alone: pass it on.
    signal.signal(signal.SIGTERM, lambda signum, frame: child.send_signal(signum))
    try:
        return _exit_code(child.wait())
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _exit_code(returncode: int) -> int:
    # Popen reports death by signal N as -N; shells report it as 128 + N.
    return 128 - returncode if returncode < 0 else returncode


# ---------------------------------------------------------------------------
# `holdfast up`


def up_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="holdfast up",
        description="Runs the local stack in the foreground: engines, migrations, the booking and"
        " availability services and a demo tenant. Ctrl-C stops everything.",
    )
    parser.add_argument("--state-dir", type=Path, default=Path(".state"))
    parser.add_argument("--booking-port", type=_port, default=DEFAULT_BOOKING_PORT)
    parser.add_argument("--availability-port", type=_port, default=DEFAULT_AVAILABILITY_PORT)
    parser.add_argument(
        "--booking-metrics-port",
        type=_metrics_port,
        default=DEFAULT_BOOKING_METRICS_PORT,
        help="Prometheus /metrics; -1 turns it off",
    )
    parser.add_argument(
        "--availability-metrics-port",
        type=_metrics_port,
        default=DEFAULT_AVAILABILITY_METRICS_PORT,
        help="Prometheus /metrics; -1 turns it off",
    )
    args = parser.parse_args(argv)
    state_dir: Path = args.state_dir.resolve()
    booking = Service(
        "booking",
        "holdfast.booking.v1.BookingService",
        args.booking_port,
        args.booking_metrics_port,
    )
    availability = Service(
        "availability",
        "holdfast.availability.v1.AvailabilityService",
        args.availability_port,
        args.availability_metrics_port,
    )

    # SIGTERM (docker stop, a supervisor) stops us exactly like Ctrl-C does.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with engines(UP, state_dir) as found:
            print("migrating ...", flush=True)
            asyncio.run(migrate(found.database_url))
            return _run_services(found, state_dir, booking, availability)
    except KeyboardInterrupt:
        print("holdfast stopped", flush=True)
        return 0
    except StackError as exc:
        print(f"holdfast up: {exc}", file=sys.stderr)
        return 1


def _port(text: str) -> int:
    # Not 0: the banner and the env file must name the port the service got.
    port = int(text)
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port (1-65535)")
    return port


def _metrics_port(text: str) -> int:
    return -1 if text.strip() == "-1" else _port(text)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # Stopping takes a few seconds; a second Ctrl-C must not cut it short and
    # leave Postgres or Redis running, so further signals are ignored.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # os.write: print() is not safe here if the signal interrupted a print.
    os.write(sys.stdout.fileno(), b"\nstopping ...\n")
    raise KeyboardInterrupt


def _run_services(found: Engines, state_dir: Path, booking: Service, availability: Service) -> int:
    """Starts the services, seeds the demo tenant, waits for a signal.

    Both start at once (each needs only Postgres and Redis); however this ends,
    they are stopped in reverse order: availability, then booking.
    """
    with contextlib.ExitStack() as cleanup:
        running: list[tuple[Service, subprocess.Popen[bytes]]] = []
        for service in (booking, availability):
            process = _start_service(service, found, state_dir)
            cleanup.callback(stop_child, process)
            running.append((service, process))
        for service, process in running:
            _wait_until_serving(service, process, state_dir)
        with grpc.insecure_channel(booking.target) as channel:
            seeded = seed_demo(channel)
            example = example_ids(channel)
        cleanup.callback((state_dir / ENV_FILE).unlink, missing_ok=True)
        _write_env_file(state_dir, found, booking, availability)
        _print_banner(found, state_dir, booking, availability, seeded, example)
        print(READY_LINE, flush=True)
        service, returncode = _wait_for_an_exit(running)
        raise StackError(
            f"the {service.name} service exited with code {returncode}:\n"
            f"{tail(state_dir / service.log_name)}"
        )


def _write_env_file(
    state_dir: Path, found: Engines, booking: Service, availability: Service
) -> None:
    """Writes where the running stack is, for tools such as `make bench` to source."""
    values = {
        "HOLDFAST_DATABASE_URL": found.database_url,
        "HOLDFAST_REDIS_URL": found.redis_url,
        "HOLDFAST_BOOKING_TARGET": booking.target,
        "HOLDFAST_AVAILABILITY_TARGET": availability.target,
    }
    lines = [f"export {name}={shlex.quote(value)}\n" for name, value in values.items()]
    (state_dir / ENV_FILE).write_text("".join(lines))


def _start_service(service: Service, found: Engines, state_dir: Path) -> subprocess.Popen[bytes]:
    env = {
        # A dev stack without authentication listens on loopback only, unless
        # HOLDFAST_GRPC_HOST / HOLDFAST_METRICS_HOST say otherwise (say, to
        # reach it from outside a VM).
        "HOLDFAST_GRPC_HOST": "127.0.0.1",
        "HOLDFAST_METRICS_HOST": "127.0.0.1",
        **os.environ,
        "HOLDFAST_DATABASE_URL": found.database_url,
        "HOLDFAST_REDIS_URL": found.redis_url,
        **service.env(),
    }
    # Its output goes to a file so the terminal keeps the walkthrough readable;
    # its own session so Ctrl-C reaches only us and we stop it in order.
    with (state_dir / service.log_name).open("wb") as output:
        try:
            return subprocess.Popen(  # noqa: S603 - our own service modules
                [sys.executable, "-m", service.module],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise StackError(f"cannot start the {service.name} service: {exc}") from exc


def _wait_until_serving(
    service: Service, process: subprocess.Popen[bytes], state_dir: Path
) -> None:
    log = state_dir / service.log_name
    request = health_pb2.HealthCheckRequest(service=service.health_service)
    deadline = time.monotonic() + READY_TIMEOUT
    with grpc.insecure_channel(service.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise StackError(
                    f"the {service.name} service exited with code {process.returncode}"
                    f" while starting:\n{tail(log)}"
                )
            with contextlib.suppress(grpc.RpcError):
                response = health.Check(request, timeout=1)
                if response.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            time.sleep(0.2)
    raise StackError(
        f"the {service.name} service was not SERVING within {READY_TIMEOUT:.0f} s:\n{tail(log)}"
    )


def _wait_for_an_exit(
    running: list[tuple[Service, subprocess.Popen[bytes]]],
) -> tuple[Service, int]:
    """Blocks until one of the services exits (they should not: only a signal ends `up`)."""
    while True:
        for service, process in running:
            returncode = process.poll()
            if returncode is not None:
                return service, returncode
        time.sleep(0.5)


def _print_banner(
    found: Engines,
    state_dir: Path,
    booking: Service,
    availability: Service,
    seeded: bool,
    example: tuple[str, str],
    out: TextIO = sys.stdout,
) -> None:
    resource_id, slot_id = example
    cli = _cli_command()
    # The CLI's --target defaults are the default ports.
    target = f" --target localhost:{booking.port}" if booking.port != DEFAULT_BOOKING_PORT else ""
    a_target = (
        f" --target localhost:{availability.port}"
        if availability.port != DEFAULT_AVAILABILITY_PORT
        else ""
    )
    pg_origin, redis_origin = found.origins
    demo = "seeded just now" if seeded else "already had inventory, left as it was"
    print(
        f"""
booking        gRPC localhost:{booking.port}  (BookingService, InventoryService, health, reflection)
               {_metrics_line(booking)}
               log {state_dir / booking.log_name}
availability   gRPC localhost:{availability.port}  (AvailabilityService, health, reflection)
               {_metrics_line(availability)}
               log {state_dir / availability.log_name}
Postgres       {found.database_url}
               ({pg_origin})
Redis          {found.redis_url}
               ({redis_origin})
state          {state_dir}  (`make clean-state` deletes it)
env file       {state_dir / ENV_FILE}  (the addresses above as shell exports; `make bench` reads it)
demo tenant    "{DEMO_TENANT}": {demo}

Try it (every command defaults to --tenant {DEMO_TENANT}):
  {cli} resources list{target}
  {cli} slots list {resource_id}{target}
  {cli} availability {resource_id}{a_target}
  {cli} holds create --resource {resource_id} --slot {slot_id} --quantity 2{target}
  {cli} availability {resource_id}{a_target}
      (the first slot now shows held 2 and 2 fewer available)
  {cli} holds get HOLD_ID{target}
  {cli} holds confirm HOLD_ID --payment-ref pi_demo{target}
  {cli} bookings list{target}

Or with grpcurl (the servers offer reflection):
  grpcurl -plaintext -H 'x-tenant-id: {DEMO_TENANT}' localhost:{booking.port} \\
    holdfast.booking.v1.InventoryService/ListResources

Ctrl-C stops everything.
""",
        file=out,
        flush=True,
    )


def _metrics_line(service: Service) -> str:
    if service.metrics_port < 0:
        return "metrics off"
    return f"metrics http://localhost:{service.metrics_port}/metrics"


def _cli_command() -> str:
    """`holdfast` if it is on PATH, else the venv's copy next to this Python."""
    if shutil.which("holdfast"):
        return "holdfast"
    script = Path(sys.executable).parent / "holdfast"
    with contextlib.suppress(ValueError):
        return str(script.relative_to(Path.cwd()))
    return str(script)
