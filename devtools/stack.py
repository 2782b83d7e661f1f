"""The local stack: `python -m devtools up` (`make up`) and `... testenv` (`make test`).

Both need a Postgres and a Redis, which devtools.engines provides, configured
or embedded; `up` then migrates, runs the booking, availability and webhook
services (and, without a Stripe key, the local fake Stripe) and the HTTP
gateway as child processes, seeds the demo tenant and gives it an API key
(devtools.demo).

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
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TextIO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devtools.demo import (
    DEMO_KEY_FILE,
    DEMO_TENANT,
    ensure_demo_key,
    example_ids,
    seed_demo,
    write_private,
)
from devtools.engines import TESTENV, UP, Engines, StackError, engines, stop_child, tail
from devtools.fakestripe.config import DEFAULT_API_KEY as FAKE_STRIPE_API_KEY
from devtools.fakestripe.config import DEFAULT_PORT as DEFAULT_FAKE_STRIPE_PORT
from devtools.fakestripe.config import DEFAULT_WEBHOOK_SECRET as FAKE_STRIPE_WEBHOOK_SECRET
from holdfast.migrate import migrate

DEFAULT_BOOKING_PORT = 50051
DEFAULT_AVAILABILITY_PORT = 50052
DEFAULT_WEBHOOKS_PORT = 50053
DEFAULT_WEBHOOKS_HTTP_PORT = 8081
DEFAULT_GATEWAY_PORT = 8080
DEFAULT_BOOKING_METRICS_PORT = 9101
DEFAULT_AVAILABILITY_METRICS_PORT = 9102
DEFAULT_WEBHOOKS_METRICS_PORT = 9103
# Where the webhook service receives Stripe's events.
WEBHOOK_PATH = "/stripe/webhook"
# With these set, `up` uses that Stripe account and starts no fake.
STRIPE_KEY_ENV = "HOLDFAST_STRIPE_API_KEY"
STRIPE_SECRETS_ENV = "HOLDFAST_STRIPE_WEBHOOK_SECRETS"
STRIPE_API_BASE = "https://api.stripe.com"
READY_LINE = "holdfast is up"
# In the state dir while `python -m devtools up` runs: the stack's URLs (and the demo
# tenant's API key) as shell exports.
ENV_FILE = "up.env"
# The gateway is ready once these answer 200, in this order: it runs, then
# it can reach the booking and availability services and Redis.
GATEWAY_READY_PATHS = ("/healthz", "/readyz")
# The walkthrough's availability range covers every seeded slot: they start
# from tomorrow (demo time zone), the last night 13 days after that.
WALKTHROUGH_DAYS = 16
# How long a service may take to report SERVING before we give up.
READY_TIMEOUT = 30.0


@dataclass(frozen=True)
class Service:
    """One process `python -m devtools up` runs as a child: `python -m <module>`."""

    # In messages, and its log's name (<state dir>/<name>.log).
    name: str
    module: str
    # Where it answers once it is ready (gRPC, or HTTP for the fake Stripe).
    port: int
    # The gRPC health entry that says it is ready; None for an HTTP server,
    # ready once GET on each of `ready_paths` answers 200.
    health_service: str | None
    metrics_port: int = -1  # -1: off, or none
    # Its settings (HOLDFAST_* variables), over the environment's.
    settings: Mapping[str, str] | None = None
    # Ports it binds besides `port` and `metrics_port`.
    other_ports: tuple[int, ...] = ()
    ready_paths: tuple[str, ...] = ("/",)

    @property
    def log_name(self) -> str:
        return f"{self.name}.log"

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ports(self) -> list[int]:
        metrics = [self.metrics_port] if self.metrics_port >= 0 else []
        return [self.port, *metrics, *self.other_ports]


def grpc_service(
    name: str,
    health_service: str,
    port: int,
    metrics_port: int,
    settings: Mapping[str, str] | None = None,
    other_ports: tuple[int, ...] = (),
) -> Service:
    """A holdfast service: `python -m services.<name>`, set by HOLDFAST_<NAME>_PORT etc."""
    prefix = f"HOLDFAST_{name.upper()}"
    return Service(
        name,
        f"services.{name}",
        port,
        health_service,
        metrics_port,
        {
            f"{prefix}_PORT": str(port),
            f"{prefix}_METRICS_PORT": str(metrics_port),
            **(settings or {}),
        },
        other_ports,
    )


@dataclass(frozen=True)
class Stack:
    """What `python -m devtools up` runs, besides the engines."""

    booking: Service
    availability: Service
    webhooks: Service
    # The HTTP/JSON API in front of booking and availability.
    gateway: Service
    # None when a Stripe key is set: the services then talk to that account.
    fake_stripe: Service | None
    # Where the webhook service receives Stripe's events.
    webhook_url: str

    def services(self) -> list[Service]:
        """In start order; they stop in reverse (the gateway first, the fake Stripe last)."""
        services = [self.booking, self.availability, self.webhooks, self.gateway]
        return [self.fake_stripe, *services] if self.fake_stripe else services


def plan_stack(args: argparse.Namespace, environ: Mapping[str, str]) -> Stack:
    """The services for `args` (python -m devtools up's ports), and how they reach Stripe.

    Without HOLDFAST_STRIPE_API_KEY in the environment, the local fake Stripe
    stands in, with its fixed test key and signing secret, sending its events
    to the webhook service. With it, the services use that account and the
    webhook service needs the secret that account signs with.
    """
    webhook_url = f"http://127.0.0.1:{args.webhooks_http_port}{WEBHOOK_PATH}"
    fake: Service | None = None
    if environ.get(STRIPE_KEY_ENV):
        if not environ.get(STRIPE_SECRETS_ENV):
            raise StackError(
                f"{STRIPE_KEY_ENV} is set, so the services use that Stripe account (no fake"
                f" Stripe), and the webhook service needs its signing secret: set"
                f" {STRIPE_SECRETS_ENV} to the whsec_... that `stripe listen --forward-to"
                f" localhost:{args.webhooks_http_port}{WEBHOOK_PATH}` prints (or unset"
                f" {STRIPE_KEY_ENV} to use the local fake Stripe)"
            )
        # Both services read the key (and any HOLDFAST_STRIPE_API_BASE), the
        # webhook service the secrets, from the environment they inherit.
        stripe_env: dict[str, str] = {}
        secrets_env: dict[str, str] = {}
    else:
        fake = Service(
            "fake-stripe",
            "devtools.fakestripe",
            args.fake_stripe_port,
            None,
            settings={
                "HOLDFAST_FAKE_STRIPE_PORT": str(args.fake_stripe_port),
                "HOLDFAST_FAKE_STRIPE_API_KEY": FAKE_STRIPE_API_KEY,
                "HOLDFAST_FAKE_STRIPE_WEBHOOK_URL": webhook_url,
                "HOLDFAST_FAKE_STRIPE_WEBHOOK_SECRET": FAKE_STRIPE_WEBHOOK_SECRET,
            },
            # Any 200 will do; this one only the fake answers.
            ready_paths=("/_fake/events",),
        )
        stripe_env = {
            "HOLDFAST_STRIPE_API_KEY": FAKE_STRIPE_API_KEY,
            "HOLDFAST_STRIPE_API_BASE": fake.url,
        }
        secrets_env = {STRIPE_SECRETS_ENV: FAKE_STRIPE_WEBHOOK_SECRET}
    booking = grpc_service(
        "booking",
        "holdfast.booking.v1.BookingService",
        args.booking_port,
        args.booking_metrics_port,
        stripe_env,
    )
    availability = grpc_service(
        "availability",
        "holdfast.availability.v1.AvailabilityService",
        args.availability_port,
        args.availability_metrics_port,
    )
    webhooks = grpc_service(
        "webhooks",
        "holdfast.webhooks.v1.WebhookAdminService",
        args.webhooks_port,
        args.webhooks_metrics_port,
        {
            "HOLDFAST_WEBHOOKS_HTTP_PORT": str(args.webhooks_http_port),
            "HOLDFAST_BOOKING_TARGET": booking.target,
            **stripe_env,
            **secrets_env,
        },
        other_ports=(args.webhooks_http_port,),
    )
    gateway = Service(
        "gateway",
        "gateway",
        args.gateway_port,
        None,
        settings={
            "HOLDFAST_GATEWAY_PORT": str(args.gateway_port),
            "HOLDFAST_BOOKING_TARGET": booking.target,
            "HOLDFAST_AVAILABILITY_TARGET": availability.target,
            # So /readyz reports whether the Stripe the services use answers.
            "HOLDFAST_STRIPE_API_BASE": stripe_env.get("HOLDFAST_STRIPE_API_BASE")
            or environ.get("HOLDFAST_STRIPE_API_BASE")
            or STRIPE_API_BASE,
        },
        ready_paths=GATEWAY_READY_PATHS,
    )
    return Stack(booking, availability, webhooks, gateway, fake, webhook_url)


# ---------------------------------------------------------------------------
# `python -m devtools testenv -- CMD ARGS...`


def testenv_main(argv: list[str]) -> int:
    if "--" in argv:
        split = argv.index("--")
        options, command = argv[:split], argv[split + 1 :]
    else:
        options, command = [], argv
    parser = argparse.ArgumentParser(
        prog="python -m devtools testenv",
        usage="python -m devtools testenv [--state-dir DIR] -- CMD [ARGS...]",
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
        print(f"python -m devtools testenv: {exc}", file=sys.stderr)
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
# `python -m devtools up`


def up_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools up",
        description="Runs the local stack in the foreground: engines, migrations, the booking,"
        " availability and webhook services, the local fake Stripe (unless"
        f" {STRIPE_KEY_ENV} is set), the HTTP gateway, and a demo tenant with an API key."
        " Ctrl-C stops everything.",
    )
    parser.add_argument("--state-dir", type=Path, default=Path(".state"))
    ports = parser.add_argument_group("ports")
    ports.add_argument("--booking-port", type=_port, default=DEFAULT_BOOKING_PORT)
    ports.add_argument("--availability-port", type=_port, default=DEFAULT_AVAILABILITY_PORT)
    ports.add_argument(
        "--webhooks-port",
        type=_port,
        default=DEFAULT_WEBHOOKS_PORT,
        help="the webhook service's gRPC (WebhookAdminService)",
    )
    ports.add_argument(
        "--webhooks-http-port",
        type=_port,
        default=DEFAULT_WEBHOOKS_HTTP_PORT,
        help=f"where the webhook service receives Stripe's events (POST {WEBHOOK_PATH})",
    )
    ports.add_argument(
        "--gateway-port",
        type=_port,
        default=DEFAULT_GATEWAY_PORT,
        help="the HTTP/JSON API (also its /metrics, /docs and health)",
    )
    ports.add_argument(
        "--fake-stripe-port",
        type=_port,
        default=DEFAULT_FAKE_STRIPE_PORT,
        help=f"the local fake Stripe (not started when {STRIPE_KEY_ENV} is set)",
    )
    for name, default in (
        ("booking", DEFAULT_BOOKING_METRICS_PORT),
        ("availability", DEFAULT_AVAILABILITY_METRICS_PORT),
        ("webhooks", DEFAULT_WEBHOOKS_METRICS_PORT),
    ):
        ports.add_argument(
            f"--{name}-metrics-port",
            type=_metrics_port,
            default=default,
            help="Prometheus /metrics; -1 turns it off",
        )
    args = parser.parse_args(argv)
    state_dir: Path = args.state_dir.resolve()

    # SIGTERM (docker stop, a supervisor) stops us exactly like Ctrl-C does.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        stack = plan_stack(args, os.environ)
        _check_ports(stack)
        # The services' logs and the env file go here, engines embedded or not.
        state_dir.mkdir(parents=True, exist_ok=True)
        with engines(UP, state_dir) as found:
            print("migrating ...", flush=True)
            asyncio.run(migrate(found.database_url))
            return _run_services(found, state_dir, stack)
    except KeyboardInterrupt:
        print("holdfast stopped", flush=True)
        return 0
    except StackError as exc:
        print(f"python -m devtools up: {exc}", file=sys.stderr)
        return 1


def _port(text: str) -> int:
    # Not 0: the banner and the env file must name the port the service got.
    port = int(text)
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port (1-65535)")
    return port


def _metrics_port(text: str) -> int:
    return -1 if text.strip() == "-1" else _port(text)


def _check_ports(stack: Stack) -> None:
    """Refuses ports named twice or already taken, before anything starts.

    A service on a taken port would exit at once, but not before its health
    check could have been answered by whatever holds the port (another
    `python -m devtools up`, say), so we look first. Ports can still be taken between
    this check and the services binding them; the services then exit and
    we report it.
    """
    owners: dict[int, str] = {}
    for service in stack.services():
        for port in service.ports:
            if port in owners:
                raise StackError(f"port {port} is given to both {owners[port]} and {service.name}")
            owners[port] = service.name
    taken = [port for port in owners if not _port_free(port)]
    if taken:
        listed = ", ".join(f"{port} ({owners[port]})" for port in taken)
        raise StackError(
            f"port in use: {listed}. Stop what listens there (another `make up`?) or move"
            ' the stack with UP_ARGS, e.g. make up UP_ARGS="--booking-port 50061"'
            " (`python -m devtools up --help` lists the port flags)"
        )


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        # As the servers bind: a closed connection's TIME_WAIT does not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # Stopping takes a few seconds; a second Ctrl-C must not cut it short and
    # leave Postgres or Redis running, so further signals are ignored.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # os.write: print() is not safe here if the signal interrupted a print.
    os.write(sys.stdout.fileno(), b"\nstopping ...\n")
    raise KeyboardInterrupt


def _run_services(found: Engines, state_dir: Path, stack: Stack) -> int:
    """Starts the services, seeds the demo tenant and its API key, waits for a signal.

    All start at once (each needs only Postgres and Redis to start; they find
    each other when called) and are waited for in order, the gateway last (its
    readiness needs the others); however this ends, they are stopped in
    reverse order: the gateway, webhooks, availability, booking, the fake Stripe.
    """
    with contextlib.ExitStack() as cleanup:
        running: list[tuple[Service, subprocess.Popen[bytes]]] = []
        for service in stack.services():
            process = _start_service(service, found, state_dir)
            cleanup.callback(stop_child, process)
            running.append((service, process))
        for service, process in running:
            _wait_until_ready(service, process, state_dir)
        with grpc.insecure_channel(stack.booking.target) as channel:
            seeded = seed_demo(channel)
            example = example_ids(channel)
        demo_key = ensure_demo_key(found.database_url, state_dir / DEMO_KEY_FILE)
        cleanup.callback((state_dir / ENV_FILE).unlink, missing_ok=True)
        _write_env_file(state_dir, found, stack, demo_key.token)
        _print_banner(found, state_dir, stack, seeded, example, demo_key.created)
        print(READY_LINE, flush=True)
        service, returncode = _wait_for_an_exit(running)
        raise StackError(
            f"the {service.name} service exited with code {returncode}:\n"
            f"{tail(state_dir / service.log_name)}"
        )


def _write_env_file(state_dir: Path, found: Engines, stack: Stack, demo_key: str) -> None:
    """Writes where the running stack is, for people and tools such as `make
    bench` to source; readable by the owner only, as it holds an API key."""
    values = {
        "HOLDFAST_DATABASE_URL": found.database_url,
        "HOLDFAST_REDIS_URL": found.redis_url,
        "HOLDFAST_BOOKING_TARGET": stack.booking.target,
        "HOLDFAST_AVAILABILITY_TARGET": stack.availability.target,
        "HOLDFAST_WEBHOOKS_TARGET": stack.webhooks.target,
        "HOLDFAST_WEBHOOKS_URL": stack.webhook_url,
        "HOLDFAST_GATEWAY_URL": stack.gateway.url,
        "HOLDFAST_DEMO_API_KEY": demo_key,
    }
    if stack.fake_stripe is not None:
        values["HOLDFAST_FAKE_STRIPE_URL"] = stack.fake_stripe.url
    for service in (stack.booking, stack.availability, stack.webhooks):
        if service.metrics_port >= 0:
            values[f"HOLDFAST_{service.name.upper()}_METRICS_URL"] = (
                f"http://127.0.0.1:{service.metrics_port}/metrics"
            )
    lines = [f"export {name}={shlex.quote(value)}\n" for name, value in values.items()]
    write_private(state_dir / ENV_FILE, "".join(lines))


def _start_service(service: Service, found: Engines, state_dir: Path) -> subprocess.Popen[bytes]:
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


def _wait_until_ready(service: Service, process: subprocess.Popen[bytes], state_dir: Path) -> None:
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
    stack: Stack,
    seeded: bool,
    example: tuple[str, str],
    new_key: bool,
    out: TextIO = sys.stdout,
    today: date | None = None,
) -> None:
    resource_id, slot_id = example
    booking, availability, webhooks, gateway, fake = (
        stack.booking,
        stack.availability,
        stack.webhooks,
        stack.gateway,
        stack.fake_stripe,
    )
    cli = _cli_command()
    # The CLI's defaults are the default ports.
    target = _flag("--target", f"localhost:{booking.port}", booking.port, DEFAULT_BOOKING_PORT)
    a_target = _flag(
        "--target",
        f"localhost:{availability.port}",
        availability.port,
        DEFAULT_AVAILABILITY_PORT,
    )
    w_target = _flag("--target", f"localhost:{webhooks.port}", webhooks.port, DEFAULT_WEBHOOKS_PORT)
    webhook_url = stack.webhook_url.replace("127.0.0.1", "localhost")
    gateway_url = f"http://localhost:{gateway.port}"
    pg_origin, redis_origin = found.origins
    demo = "seeded just now" if seeded else "already had inventory, left as it was"
    key_origin = "made just now" if new_key else "the one from the last run"
    env_file = _shown_path(state_dir / ENV_FILE)
    first_day = today or datetime.now(UTC).date()
    window = (
        f"start={first_day.isoformat()}T00:00:00Z"
        f"&end={(first_day + timedelta(days=WALKTHROUGH_DAYS)).isoformat()}T00:00:00Z"
    )
    if fake is not None:
        fake_flag = _flag("--fake-stripe", fake.url, fake.port, DEFAULT_FAKE_STRIPE_PORT)
        stripe = (
            f"fake Stripe    http://localhost:{fake.port}  (API key {FAKE_STRIPE_API_KEY},"
            f" events signed with {FAKE_STRIPE_WEBHOOK_SECRET})\n"
            f"               sends its events to {webhook_url}\n"
            f"               log {state_dir / fake.log_name}"
        )
        pay = (
            f"  {cli} pay SESSION_ID{fake_flag}\n"
            "      (the customer pays on the fake Stripe, which sends checkout.session.completed"
            " to the webhook service)"
        )
        http_pay = (
            "  curl -s -X POST $HOLDFAST_FAKE_STRIPE_URL/_fake/checkout/sessions/SESSION_ID/pay\n"
            "      (the customer pays on the fake Stripe, which sends checkout.session.completed"
            " to the webhook service)"
        )
    else:
        key = os.environ.get(STRIPE_KEY_ENV, "")
        mode = "test mode" if "_test_" in key else "NOT a test key: real payments"
        stripe = (
            f"Stripe         the account of {STRIPE_KEY_ENV} ({mode}); no fake Stripe\n"
            f"               forward its events: stripe listen --forward-to"
            f" localhost:{webhooks.other_ports[0]}{WEBHOOK_PATH}"
        )
        pay = (
            "  open the checkout's url and pay with the test card 4242 4242 4242 4242\n"
            "      (Stripe sends checkout.session.completed through `stripe listen`)"
        )
        http_pay = pay
    print(
        f"""
gateway        HTTP {gateway_url}  (the JSON API /v1/...; OpenAPI UI {gateway_url}/docs)
               health /healthz /readyz, metrics {gateway_url}/metrics
               log {state_dir / gateway.log_name}
booking        gRPC localhost:{booking.port}  (BookingService, InventoryService, health, reflection)
               {_metrics_line(booking)}
               log {state_dir / booking.log_name}
availability   gRPC localhost:{availability.port}  (AvailabilityService, health, reflection)
               {_metrics_line(availability)}
               log {state_dir / availability.log_name}
webhooks       Stripe events POST {webhook_url}
               gRPC localhost:{webhooks.port}  (WebhookAdminService, health, reflection)
               {_metrics_line(webhooks)}
               log {state_dir / webhooks.log_name}
{stripe}
Postgres       {found.database_url}
               ({pg_origin})
Redis          {found.redis_url}
               ({redis_origin})
state          {state_dir}  (`make clean-state` deletes it)
env file       {env_file}  (the addresses above and the demo API key as shell exports;
               `make bench` reads it)
demo tenant    "{DEMO_TENANT}": {demo}
               API key with every scope ({key_origin}): $HOLDFAST_DEMO_API_KEY in the env file

Try the HTTP API, from a hold to a paid booking:
  source {env_file}
  AUTH="Authorization: Bearer $HOLDFAST_DEMO_API_KEY"
  curl -s -H "$AUTH" $HOLDFAST_GATEWAY_URL/v1/resources
  AV=$HOLDFAST_GATEWAY_URL/v1/resources/{resource_id}/availability
  WINDOW="{window}"
  curl -s -H "$AUTH" "$AV?$WINDOW"
      (each slot: capacity, available, held, booked)
  curl -N -H "$AUTH" "$AV/stream?$WINDOW"
      (in another terminal, after the same `source` and AUTH, AV, WINDOW: an
      `availability` event now, and again at every change below)
  curl -s -H "$AUTH" -H "Idempotency-Key: try-1" -H "Content-Type: application/json" \\
    -d '{{"resource_id": "{resource_id}", "slot_ids": ["{slot_id}"], "quantity": 2}}' \\
    $HOLDFAST_GATEWAY_URL/v1/holds
      (201, the hold: its id, "status": "held"; the same Idempotency-Key again answers the
      same hold)
  curl -s -H "$AUTH" "$AV?$WINDOW"
      (the first slot: held 2, available 2 fewer)
  curl -s -H "$AUTH" -X POST $HOLDFAST_GATEWAY_URL/v1/holds/HOLD_ID/checkout
      (a Stripe Checkout session for the hold: its session_id and the url to pay on)
{http_pay}
  curl -s -H "$AUTH" $HOLDFAST_GATEWAY_URL/v1/bookings/HOLD_ID
      ("status": "confirmed", "payment_ref": the Stripe payment intent)
  curl -s -H "$AUTH" "$AV?$WINDOW"
      (booked 2, held 0)

Or with the CLI, over gRPC (every command defaults to --tenant {DEMO_TENANT}):
  {cli} resources list{target}
  {cli} availability {resource_id}{a_target}
  {cli} holds create --resource {resource_id} --slot {slot_id} --quantity 2{target}
  {cli} availability {resource_id}{a_target}
      (the first slot now shows held 2 and 2 fewer available)
  {cli} holds checkout HOLD_ID{target}
      (a Stripe Checkout session for the hold: its id and the page to pay on)
{pay}
  {cli} bookings get HOLD_ID{target}
      (CONFIRMED, its payment_ref the Stripe payment intent)
  {cli} availability {resource_id}{a_target}
      (booked 2, held 0)
  {cli} webhooks list{w_target}
      (the Stripe events received, and what each did)

Or with grpcurl (the servers offer reflection):
  grpcurl -plaintext -H 'x-tenant-id: {DEMO_TENANT}' localhost:{booking.port} \\
    holdfast.booking.v1.InventoryService/ListResources

More API keys, after the `source`: {cli} keys create --tenant {DEMO_TENANT} --scope ...
Ctrl-C stops everything.
""",
        file=out,
        flush=True,
    )


def _shown_path(path: Path) -> str:
    """`path` relative to the working directory when it is below it, as a person types it."""
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


def _flag(name: str, value: str, port: int, default_port: int) -> str:
    """` --name value` for a CLI command when the port is not the CLI's default."""
    return f" {name} {value}" if port != default_port else ""


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
