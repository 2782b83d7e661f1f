"""The whole system as separate processes, the way it runs in production:
booking, availability, webhooks, the gateway and the fake Stripe on free
ports, with a database and a Redis of the test's own.

A test may pin ports (to put a proxy in front of a process before it starts),
give each service settings of its own, and kill and restart a service on the
same ports, as an orchestrator would after a crash."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from devtools.engines import free_port, stop_child, tail
from devtools.fakestripe import DEFAULT_API_KEY, DEFAULT_WEBHOOK_SECRET
from holdfast.registry import SERVICES as REGISTRY
from holdfast.registry import ServiceEntry
from holdfast.tenancy import SCOPES
from holdfast.tenancy.keys import KeyRepository
from tests.support.availability import eventually
from tests.support.processes import service_env, start_service, wait_until_serving

SERVICES = tuple(entry.name for entry in REGISTRY)
# What `ports` may pin: the three gRPC ports, the webhook receiver's HTTP port
# ("http"), the gateway's and the fake Stripe's.
PORT_NAMES = ("booking", "availability", "webhooks", "http", "gateway", "stripe")


@dataclass
class Process:
    """One running process of the stack and how to start it again."""

    module: str
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes]
    # Returns once the process serves (fails with its log if it died).
    ready: Callable[[Process], Awaitable[None]]
    starts: int = 1


@dataclass
class Stack:
    gateway: str
    fake_stripe: str
    database_url: str
    # Per service: its log file (the latest start's) and its /metrics URL.
    logs: dict[str, Path]
    metrics: dict[str, str]
    # The gRPC targets of booking, availability and webhooks.
    targets: dict[str, str] = field(default_factory=dict)
    # Where Stripe posts events (the webhook service's receiver).
    webhook_url: str = ""
    _processes: dict[str, Process] = field(default_factory=dict)
    _started: list[tuple[subprocess.Popen[bytes], Path]] = field(default_factory=list)

    def pid(self, name: str) -> int:
        return self._processes[name].popen.pid

    def kill(self, name: str) -> None:
        """SIGKILL: no shutdown, no draining, as when a host or a container dies."""
        process = self._processes[name].popen
        process.send_signal(signal.SIGKILL)
        process.wait()

    async def restart(self, name: str, **settings: str) -> None:
        """Starts `name` again (killed or not) on the same ports, with the same
        environment and `settings` (HOLDFAST_* named without the prefix) on
        top; returns once it serves. Its log goes to a new file."""
        old = self._processes[name]
        if old.popen.poll() is None:
            old.popen.terminate()
            await asyncio.to_thread(stop_child, old.popen)
        env = {**old.env, **{f"HOLDFAST_{key.upper()}": value for key, value in settings.items()}}
        starts = old.starts + 1
        log = old.log.with_name(f"{old.log.stem.split('.')[0]}.{starts}.log")
        popen = start_service(old.module, env, log)
        self._started.append((popen, log))
        new = Process(old.module, env, log, popen, old.ready, starts)
        self._processes[name] = new
        self.logs[name] = log
        await new.ready(new)

    def log_text(self, name: str) -> str:
        """Everything `name` logged, over all its starts."""
        first = self._processes[name].log.with_name(f"{name}.log")
        later = sorted(first.parent.glob(f"{name}.*.log"))
        return "".join(path.read_text(errors="replace") for path in [first, *later])


@asynccontextmanager
async def processes() -> AsyncIterator[list[tuple[subprocess.Popen[bytes], Path]]]:
    """The started processes, stopped together: SIGTERM to all, then each
    waited for (and killed if it does not stop in time). The waiting happens
    in threads: whatever else runs on the test's event loop (a proxy between
    two of the processes, say) must keep running while they drain."""
    started: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        yield started
    finally:
        for process, _ in started:
            if process.poll() is None:
                process.terminate()
        stopping = asyncio.gather(*(asyncio.to_thread(stop_child, p) for p, _ in started))
        await asyncio.shield(stopping)


async def wait_until_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    async with httpx.AsyncClient(timeout=2) as http:

        async def ready() -> int:
            if process.poll() is not None:
                raise AssertionError(f"{url} exited early:\n{tail(log)}")
            try:
                return (await http.get(url)).status_code
            except httpx.TransportError:
                return 0

        try:
            await eventually(ready, lambda status: status == 200, within=30, interval=0.1)
        except AssertionError as error:
            raise AssertionError(f"{error}\n{tail(log)}") from None


def says_listening(process: subprocess.Popen[bytes], log: Path) -> bool:
    if process.poll() is not None:
        raise AssertionError(f"the fake Stripe exited early:\n{tail(log)}")
    return "fake Stripe listening on" in log.read_text()


async def wait_until_listening(process: subprocess.Popen[bytes], log: Path) -> None:
    """The fake Stripe says so on one line when it is."""

    async def listening() -> bool:
        return says_listening(process, log)

    await eventually(listening, bool, within=30, interval=0.1)


def _port_name(entry: ServiceEntry, setting: str) -> str:
    """Which of PORT_NAMES a port setting is: a service's own port is named
    after it (the gateway's API too), the webhook receiver's is "http"."""
    return entry.name if setting == entry.grpc_port or entry.grpc_port is None else "http"


# Each service's settings in this stack besides its ports and targets.
_STACK_SETTINGS: dict[str, dict[str, str]] = {
    "webhooks": {
        "webhooks_http_host": "127.0.0.1",
        "stripe_webhook_secrets": DEFAULT_WEBHOOK_SECRET,
        "processor_poll_interval_seconds": "0.2",
    },
    "gateway": {"gateway_host": "127.0.0.1", "sse_heartbeat_seconds": "1"},
}
# The services that call Stripe (the fake one here).
_STRIPE_USERS = ("booking", "webhooks")


@dataclass(frozen=True)
class _Plan:
    """Where each process of a stack listens."""

    ports: dict[str, int]
    metrics_ports: dict[str, int]

    @property
    def targets(self) -> dict[str, str]:
        """The gRPC targets of booking, availability and webhooks."""
        return {e.name: f"127.0.0.1:{self.ports[e.name]}" for e in REGISTRY if e.grpc_port}

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    @property
    def fake_stripe(self) -> str:
        return f"http://127.0.0.1:{self.ports['stripe']}"

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['http']}/stripe/webhook"

    def settings(self, entry: ServiceEntry) -> dict[str, str]:
        """`entry`'s ports, the targets it calls, and this stack's settings for it."""
        own = {
            setting: str(self.ports[_port_name(entry, setting)])
            for setting in (entry.grpc_port, entry.http_port)
            if setting is not None
        }
        if entry.metrics_port is not None:
            own[entry.metrics_port] = str(self.metrics_ports[entry.name])
        calls = {f"{callee}_target": self.targets[callee] for callee in entry.calls}
        stripe = (
            {"stripe_api_key": DEFAULT_API_KEY, "stripe_api_base": self.fake_stripe}
            if entry.name in _STRIPE_USERS
            else {}
        )
        return {**own, **_STACK_SETTINGS.get(entry.name, {}), **calls, **stripe}

    def readiness(self, entry: ServiceEntry) -> Callable[[Process], Awaitable[None]]:
        """gRPC health for a gRPC service; the gateway's readiness paths (it
        asks the others, so it is waited for last)."""

        async def ready(process: Process) -> None:
            if entry.grpc_port is not None:
                await wait_until_serving(self.targets[entry.name], process.popen, process.log)
            for path in entry.ready_paths:
                await wait_until_ready(f"{self.gateway_url}{path}", process.popen, process.log)

        return ready


Ready = Callable[[Process], Awaitable[None]]
# What to start: a name, a module, its environment, and how to wait for it.
Launch = tuple[str, str, dict[str, str], Ready]


def _stack_plan(ports: Mapping[str, int] | None) -> _Plan:
    """Free ports for everything but the pinned ones."""
    unknown = set(ports or {}) - set(PORT_NAMES)
    assert not unknown, f"no such port to pin: {unknown}"
    return _Plan(
        {name: free_port() for name in PORT_NAMES} | dict(ports or {}),
        {entry.name: free_port() for entry in REGISTRY if entry.metrics_port},
    )


def _launches(
    plan: _Plan,
    database_url: str,
    redis_url: str,
    extra_env: dict[str, str] | None,
    settings: Mapping[str, Mapping[str, str]] | None,
) -> list[Launch]:
    """The fake Stripe, then every service in the registry's order."""

    async def listening(process: Process) -> None:
        await wait_until_listening(process.popen, process.log)

    launches: list[Launch] = [
        (
            "fake-stripe",
            "devtools.fakestripe",
            {
                "HOLDFAST_FAKE_STRIPE_PORT": str(plan.ports["stripe"]),
                "HOLDFAST_FAKE_STRIPE_WEBHOOK_URL": plan.webhook_url,
                "HOLDFAST_FAKE_STRIPE_RETRY_BACKOFF_SECONDS": "0.2",
            },
            listening,
        )
    ]
    for entry in REGISTRY:
        chosen = {"redis_url": redis_url, **plan.settings(entry)}
        chosen |= (settings or {}).get(entry.name, {})
        environment = {**service_env(database_url, **chosen), **(extra_env or {})}
        launches.append((entry.name, entry.module, environment, plan.readiness(entry)))
    return launches


def _metrics_urls(plan: _Plan) -> dict[str, str]:
    metrics = {
        name: f"http://127.0.0.1:{port}/metrics" for name, port in plan.metrics_ports.items()
    }
    metrics["gateway"] = f"{plan.gateway_url}/metrics"
    return metrics


@asynccontextmanager
async def running_stack(
    database_url: str,
    redis_url: str,
    folder: Path,
    extra_env: dict[str, str] | None = None,
    *,
    ports: Mapping[str, int] | None = None,
    settings: Mapping[str, Mapping[str, str]] | None = None,
) -> AsyncIterator[Stack]:
    """Starts every process, waits until each is ready, and stops them all
    afterwards. `extra_env` goes to the four services (e.g. OTEL_* settings);
    `ports` pins some of PORT_NAMES (the others are free ports); `settings`
    are more HOLDFAST_* settings per service (named without the prefix: e.g.
    {"gateway": {"rate_limit_per_key": "10000"}}), which win over the stack's."""
    plan = _stack_plan(ports)
    logs: dict[str, Path] = {}
    started_by_name: dict[str, Process] = {}
    async with processes() as started:
        for name, module, environment, ready in _launches(
            plan, database_url, redis_url, extra_env, settings
        ):
            logs[name] = folder / f"{name}.log"
            popen = start_service(module, environment, logs[name])
            started.append((popen, logs[name]))
            started_by_name[name] = Process(module, environment, logs[name], popen, ready)
        # The gateway's readiness asks the others, so it comes last.
        for process in started_by_name.values():
            await process.ready(process)
        yield Stack(
            plan.gateway_url,
            plan.fake_stripe,
            database_url,
            logs,
            _metrics_urls(plan),
            plan.targets,
            plan.webhook_url,
            started_by_name,
            started,
        )


async def api_key(database_url: str) -> dict[str, str]:
    """A new tenant and a key with every scope, as `holdfast keys create` makes."""
    tenant = f"e2e-{uuid.uuid4().hex[:8]}"
    async with asyncpg.create_pool(database_url, min_size=1, max_size=1) as pool:
        keys = KeyRepository(pool)
        await keys.create_tenant(tenant, "End to end")
        made = await keys.create_key(tenant, SCOPES, name="e2e")
    return {"Authorization": f"Bearer {made.token}"}


async def harbour_tour(api: httpx.AsyncClient) -> tuple[str, str]:
    """The operator's inventory, through the gateway's admin routes: a resource
    with one slot of capacity 4 on 2031-06-01; returns (resource id, slot id)."""
    made = await api.post(
        "/v1/resources",
        json={
            "name": "Harbour tour",
            "time_zone": "Europe/Lisbon",
            "price": {"currency": "EUR", "amount_minor": 2500},
            "default_capacity": 4,
        },
    )
    assert made.status_code == 201, made.text
    resource: str = made.json()["id"]
    slots = await api.post(
        f"/v1/resources/{resource}/slots",
        json={"slots": [{"start": "2031-06-01T09:00:00Z", "end": "2031-06-01T10:00:00Z"}]},
    )
    assert slots.status_code == 201, slots.text
    [slot] = [s["id"] for s in slots.json()["items"]]
    return resource, slot
