"""What `python -m devtools up` runs, on which ports, with which settings:
the services of holdfast.registry, and the fake Stripe unless a Stripe
account is given. Planning starts nothing; `check_ports` looks whether the
ports are free before anything starts."""

from __future__ import annotations

import argparse
import importlib
import socket
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic_settings import BaseSettings

from devtools.engines import StackError
from devtools.fakestripe.config import DEFAULT_API_KEY as FAKE_STRIPE_API_KEY
from devtools.fakestripe.config import DEFAULT_PORT as DEFAULT_FAKE_STRIPE_PORT
from devtools.fakestripe.config import DEFAULT_WEBHOOK_SECRET as FAKE_STRIPE_WEBHOOK_SECRET
from holdfast.registry import BY_NAME, SERVICES, ServiceEntry, env

# Where the webhook service receives Stripe's events.
WEBHOOK_PATH = "/stripe/webhook"
# With these set, `up` uses that Stripe account and starts no fake.
STRIPE_KEY_ENV = "HOLDFAST_STRIPE_API_KEY"
STRIPE_SECRETS_ENV = "HOLDFAST_STRIPE_WEBHOOK_SECRETS"
STRIPE_API_BASE = "https://api.stripe.com"


def settings_class(entry: ServiceEntry) -> type[BaseSettings]:
    """The settings class the registry names as "module:Class"."""
    module, name = entry.settings.split(":")
    found: type[BaseSettings] = getattr(importlib.import_module(module), name)
    return found


def default_port(entry: ServiceEntry, setting: str) -> int:
    """A port setting's default, where the service's config gives it."""
    value = settings_class(entry).model_fields[setting].default
    assert isinstance(value, int), f"{entry.settings}.{setting} has no integer default"
    return value


def default_ports() -> dict[str, int]:
    """Every service's port settings (booking_port, ...) with their defaults."""
    return {
        setting: default_port(entry, setting)
        for entry in SERVICES
        for setting in entry.port_settings
    }


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


@dataclass(frozen=True)
class Stack:
    """What `python -m devtools up` runs, besides the engines."""

    # The registry's services, in its order.
    by_name: Mapping[str, Service]
    # None when a Stripe key is set: the services then talk to that account.
    fake_stripe: Service | None
    # Where the webhook service receives Stripe's events.
    webhook_url: str

    @property
    def booking(self) -> Service:
        return self.by_name["booking"]

    @property
    def availability(self) -> Service:
        return self.by_name["availability"]

    @property
    def webhooks(self) -> Service:
        return self.by_name["webhooks"]

    @property
    def gateway(self) -> Service:
        """The HTTP/JSON API in front of booking and availability."""
        return self.by_name["gateway"]

    def services(self) -> list[Service]:
        """In start order; they stop in reverse (the gateway first, the fake Stripe last)."""
        services = list(self.by_name.values())
        return [self.fake_stripe, *services] if self.fake_stripe else services


def _service(
    entry: ServiceEntry,
    ports: Mapping[str, int],
    targets: Mapping[str, str],
    more: Mapping[str, str],
) -> Service:
    """A service of the registry on `ports` (its port settings' values),
    calling the others at `targets`, with `more` settings."""
    own = {env(setting): str(ports[setting]) for setting in entry.port_settings}
    calls = {env(f"{callee}_target"): targets[callee] for callee in entry.calls}
    main = entry.grpc_port or entry.http_port
    assert main is not None, f"{entry.name} has no port to answer on"
    # A gRPC service with an HTTP port too (the webhook receiver) binds it besides.
    others = (ports[entry.http_port],) if entry.grpc_port and entry.http_port else ()
    return Service(
        entry.name,
        entry.module,
        ports[main],
        entry.ready_health,
        ports[entry.metrics_port] if entry.metrics_port else -1,
        {**own, **calls, **more},
        others,
        entry.ready_paths or ("/",),
    )


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
        fake = _fake_stripe(args.fake_stripe_port, webhook_url)
        stripe_env = {
            "HOLDFAST_STRIPE_API_KEY": FAKE_STRIPE_API_KEY,
            "HOLDFAST_STRIPE_API_BASE": fake.url,
        }
        secrets_env = {STRIPE_SECRETS_ENV: FAKE_STRIPE_WEBHOOK_SECRET}
    more = {
        "booking": stripe_env,
        "webhooks": {**stripe_env, **secrets_env},
        # So /readyz reports whether the Stripe the services use answers.
        "gateway": {
            "HOLDFAST_STRIPE_API_BASE": stripe_env.get("HOLDFAST_STRIPE_API_BASE")
            or environ.get("HOLDFAST_STRIPE_API_BASE")
            or STRIPE_API_BASE,
        },
    }
    ports = {setting: getattr(args, setting) for setting in default_ports()}
    targets = {
        entry.name: f"127.0.0.1:{ports[entry.grpc_port]}" for entry in SERVICES if entry.grpc_port
    }
    by_name = {
        entry.name: _service(entry, ports, targets, more.get(entry.name, {})) for entry in SERVICES
    }
    return Stack(by_name, fake, webhook_url)


def _fake_stripe(port: int, webhook_url: str) -> Service:
    return Service(
        "fake-stripe",
        "devtools.fakestripe",
        port,
        None,
        settings={
            "HOLDFAST_FAKE_STRIPE_PORT": str(port),
            "HOLDFAST_FAKE_STRIPE_API_KEY": FAKE_STRIPE_API_KEY,
            "HOLDFAST_FAKE_STRIPE_WEBHOOK_URL": webhook_url,
            "HOLDFAST_FAKE_STRIPE_WEBHOOK_SECRET": FAKE_STRIPE_WEBHOOK_SECRET,
        },
        # Any 200 will do; this one only the fake answers.
        ready_paths=("/_fake/events",),
    )


# Help for the port flags that need more than their name.
_PORT_HELP = {
    "webhooks_port": "the webhook service's gRPC (WebhookAdminService)",
    "webhooks_http_port": (
        f"where the webhook service receives Stripe's events (POST {WEBHOOK_PATH})"
    ),
    "gateway_port": "the HTTP/JSON API (also its /metrics, /docs and health)",
}


def add_port_arguments(parser: argparse.ArgumentParser) -> None:
    """--<service>-port etc., one per port setting of the registry (its
    default the setting's), and --fake-stripe-port."""
    ports = parser.add_argument_group("ports")
    defaults = default_ports()
    grpc = [entry.grpc_port for entry in SERVICES if entry.grpc_port]
    http = [entry.http_port for entry in SERVICES if entry.http_port]
    for setting in [*grpc, *http]:
        ports.add_argument(
            f"--{setting.replace('_', '-')}",
            type=_port,
            default=defaults[setting],
            help=_PORT_HELP.get(setting),
        )
    ports.add_argument(
        "--fake-stripe-port",
        type=_port,
        default=DEFAULT_FAKE_STRIPE_PORT,
        help=f"the local fake Stripe (not started when {STRIPE_KEY_ENV} is set)",
    )
    for setting in [entry.metrics_port for entry in SERVICES if entry.metrics_port]:
        ports.add_argument(
            f"--{setting.replace('_', '-')}",
            type=_metrics_port,
            default=defaults[setting],
            help="Prometheus /metrics; -1 turns it off",
        )


def _port(text: str) -> int:
    # Not 0: the banner and the env file must name the port the service got.
    port = int(text)
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port (1-65535)")
    return port


def _metrics_port(text: str) -> int:
    return -1 if text.strip() == "-1" else _port(text)


def check_ports(stack: Stack) -> None:
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


def default_of(name: str, setting: str) -> int:
    """The default of one service's port setting (the CLI's defaults are these)."""
    return default_port(BY_NAME[name], setting)
