"""The local stack: `holdfast up` (`make up`) and `holdfast testenv` (`make test`).

Both need a Postgres and a Redis, which holdfast.engines provides, configured
or embedded; `up` then migrates, runs the booking service as a child process
and seeds the demo tenant (holdfast.demo).

This module supervises processes rather than serving requests, so it is plain
blocking code that reads top to bottom; Ctrl-C and SIGTERM both raise
KeyboardInterrupt, and the `finally` blocks stop the children in reverse order.
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
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from holdfast.demo import DEMO_TENANT, example_ids, seed_demo
from holdfast.engines import TESTENV, UP, Engines, StackError, engines, stop_child, tail
from holdfast.migrate import migrate

BOOKING_SERVICE = "holdfast.booking.v1.BookingService"
DEFAULT_BOOKING_PORT = 50051
READY_LINE = "holdfast is up"
# In the state dir while `holdfast up` runs: the stack's URLs as shell exports.
ENV_FILE = "up.env"
BOOKING_LOG = "booking.log"
# How long the booking service may take to report SERVING before we give up.
BOOKING_READY_TIMEOUT = 30.0


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
        description="Runs the local stack in the foreground: engines, migrations, the booking"
        " service and a demo tenant. Ctrl-C stops everything.",
    )
    parser.add_argument("--state-dir", type=Path, default=Path(".state"))
    parser.add_argument("--booking-port", type=int, default=DEFAULT_BOOKING_PORT)
    args = parser.parse_args(argv)
    state_dir: Path = args.state_dir.resolve()

    # SIGTERM (docker stop, a supervisor) stops us exactly like Ctrl-C does.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with engines(UP, state_dir) as found:
            print("migrating ...", flush=True)
            asyncio.run(migrate(found.database_url))
            return _run_services(found, state_dir, args.booking_port)
    except KeyboardInterrupt:
        print("holdfast stopped", flush=True)
        return 0
    except StackError as exc:
        print(f"holdfast up: {exc}", file=sys.stderr)
        return 1


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # Stopping takes a few seconds; a second Ctrl-C must not cut it short and
    # leave Postgres or Redis running, so further signals are ignored.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # os.write: print() is not safe here if the signal interrupted a print.
    os.write(sys.stdout.fileno(), b"\nstopping ...\n")
    raise KeyboardInterrupt


def _run_services(found: Engines, state_dir: Path, booking_port: int) -> int:
    """Starts the booking service, seeds the demo tenant, waits for a signal."""
    log = state_dir / BOOKING_LOG
    booking = _start_booking(found, booking_port, log)
    try:
        target = f"127.0.0.1:{booking_port}"
        with grpc.insecure_channel(target) as channel:
            _wait_until_serving(channel, booking, log)
            seeded = seed_demo(channel)
            example = example_ids(channel)
        _write_env_file(state_dir, found, target)
        _print_banner(found, state_dir, booking_port, seeded, example)
        print(READY_LINE, flush=True)
        returncode = booking.wait()
        raise StackError(f"the booking service exited with code {returncode}:\n{tail(log)}")
    finally:
        stop_child(booking)
        (state_dir / ENV_FILE).unlink(missing_ok=True)


def _write_env_file(state_dir: Path, found: Engines, target: str) -> None:
    """Writes where the running stack is, for tools such as `make bench` to source."""
    values = {
        "HOLDFAST_DATABASE_URL": found.database_url,
        "HOLDFAST_REDIS_URL": found.redis_url,
        "HOLDFAST_BOOKING_TARGET": target,
    }
    lines = [f"export {name}={shlex.quote(value)}\n" for name, value in values.items()]
    (state_dir / ENV_FILE).write_text("".join(lines))


def _start_booking(found: Engines, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        # A dev stack without authentication listens on loopback only, unless
        # HOLDFAST_GRPC_HOST says otherwise (say, to reach it from outside a VM).
        "HOLDFAST_GRPC_HOST": "127.0.0.1",
        **os.environ,
        "HOLDFAST_DATABASE_URL": found.database_url,
        "HOLDFAST_REDIS_URL": found.redis_url,
        "HOLDFAST_BOOKING_PORT": str(port),
    }
    # Its output goes to a file so the terminal keeps the walkthrough readable;
    # its own session so Ctrl-C reaches only us and we stop it in order.
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "services.booking"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_until_serving(channel: Any, booking: subprocess.Popen[bytes], log: Path) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    request = health_pb2.HealthCheckRequest(service=BOOKING_SERVICE)
    deadline = time.monotonic() + BOOKING_READY_TIMEOUT
    while time.monotonic() < deadline:
        if booking.poll() is not None:
            raise StackError(
                f"the booking service exited with code {booking.returncode} while starting:\n"
                f"{tail(log)}"
            )
        with contextlib.suppress(grpc.RpcError):
            if health.Check(request, timeout=1).status == health_pb2.HealthCheckResponse.SERVING:
                return
        time.sleep(0.2)
    raise StackError(
        f"the booking service was not SERVING within {BOOKING_READY_TIMEOUT:.0f} s:\n{tail(log)}"
    )


def _print_banner(
    found: Engines,
    state_dir: Path,
    port: int,
    seeded: bool,
    example: tuple[str, str],
    out: TextIO = sys.stdout,
) -> None:
    resource_id, slot_id = example
    cli = _cli_command()
    target = f" --target localhost:{port}" if port != DEFAULT_BOOKING_PORT else ""
    pg_origin, redis_origin = found.origins
    demo = "seeded just now" if seeded else "already had inventory, left as it was"
    print(
        f"""
booking gRPC   localhost:{port}  (BookingService, InventoryService, health, reflection)
  log          {state_dir / BOOKING_LOG}
Postgres       {found.database_url}
               ({pg_origin})
Redis          {found.redis_url}
               ({redis_origin})
state          {state_dir}  (`make clean-state` deletes it)
env file       {state_dir / ENV_FILE}  (the URLs above as shell exports; `make bench` reads it)
demo tenant    "{DEMO_TENANT}": {demo}

Try it (every command defaults to --tenant {DEMO_TENANT}):
  {cli} resources list{target}
  {cli} slots list {resource_id}{target}
  {cli} holds create --resource {resource_id} --slot {slot_id} --quantity 2{target}
  {cli} holds get HOLD_ID{target}
  {cli} holds confirm HOLD_ID --payment-ref pi_demo{target}
  {cli} bookings list{target}

Or with grpcurl (the server offers reflection):
  grpcurl -plaintext -H 'x-tenant-id: {DEMO_TENANT}' localhost:{port} \\
    holdfast.booking.v1.InventoryService/ListResources

Ctrl-C stops everything.
""",
        file=out,
        flush=True,
    )


def _cli_command() -> str:
    """`holdfast` if it is on PATH, else the venv's copy next to this Python."""
    if shutil.which("holdfast"):
        return "holdfast"
    script = Path(sys.executable).parent / "holdfast"
    with contextlib.suppress(ValueError):
        return str(script.relative_to(Path.cwd()))
    return str(script)
