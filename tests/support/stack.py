"""The whole system as separate processes, the way it runs in production:
booking, availability, webhooks, the gateway and the fake Stripe on free
ports, with a database and a Redis of the test's own."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx

from gateway.keys import SCOPES, KeyRepository
from holdfast.engines import free_port, stop_child, tail
from holdfast.fakestripe import DEFAULT_API_KEY, DEFAULT_WEBHOOK_SECRET
from tests.support.availability import eventually
from tests.support.processes import service_env, start_service, wait_until_serving

SERVICES = ("booking", "availability", "webhooks", "gateway")


@dataclass
class Stack:
    gateway: str
    fake_stripe: str
    database_url: str
    # Per service: its log file and its /metrics URL.
    logs: dict[str, Path]
    metrics: dict[str, str]


@contextmanager
def processes() -> Iterator[list[tuple[subprocess.Popen[bytes], Path]]]:
    """The started processes, stopped together: SIGTERM to all, then each
    waited for (and killed if it does not stop in time)."""
    started: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        yield started
    finally:
        for process, _ in started:
            if process.poll() is None:
                process.terminate()
        for process, _ in started:
            stop_child(process)


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


@asynccontextmanager
async def running_stack(
    database_url: str, redis_url: str, folder: Path, extra_env: dict[str, str] | None = None
) -> AsyncIterator[Stack]:
    """Starts every process, waits until each is ready, and stops them all
    afterwards. `extra_env` goes to the four services (e.g. OTEL_* settings)."""
    ports = {name: free_port() for name in ("booking", "availability", "webhooks", "http")}
    ports.update(gateway=free_port(), stripe=free_port())
    metrics_ports = {name: free_port() for name in ("booking", "availability", "webhooks")}
    fake_stripe = f"http://127.0.0.1:{ports['stripe']}"
    stripe = {"stripe_api_key": DEFAULT_API_KEY, "stripe_api_base": fake_stripe}

    def env(name: str, **settings: str) -> dict[str, str]:
        if name in metrics_ports:
            settings[f"{name}_metrics_port"] = str(metrics_ports[name])
        return {**service_env(database_url, redis_url=redis_url, **settings), **(extra_env or {})}

    booking = f"127.0.0.1:{ports['booking']}"
    availability = f"127.0.0.1:{ports['availability']}"
    webhooks = f"127.0.0.1:{ports['webhooks']}"
    logs: dict[str, Path] = {}
    with processes() as started:

        def start(name: str, module: str, settings: dict[str, str]) -> subprocess.Popen[bytes]:
            logs[name] = folder / f"{name}.log"
            started.append((start_service(module, settings, logs[name]), logs[name]))
            return started[-1][0]

        fake = start(
            "fake-stripe",
            "holdfast.fakestripe",
            {
                "HOLDFAST_FAKE_STRIPE_PORT": str(ports["stripe"]),
                "HOLDFAST_FAKE_STRIPE_WEBHOOK_URL": f"http://127.0.0.1:{ports['http']}/stripe/webhook",
                "HOLDFAST_FAKE_STRIPE_RETRY_BACKOFF_SECONDS": "0.2",
            },
        )
        grpc_services = {
            "booking": start(
                "booking",
                "services.booking",
                env("booking", booking_port=str(ports["booking"]), **stripe),
            ),
            "availability": start(
                "availability",
                "services.availability",
                env("availability", availability_port=str(ports["availability"])),
            ),
            "webhooks": start(
                "webhooks",
                "services.webhooks",
                env(
                    "webhooks",
                    webhooks_port=str(ports["webhooks"]),
                    webhooks_http_port=str(ports["http"]),
                    webhooks_http_host="127.0.0.1",
                    stripe_webhook_secrets=DEFAULT_WEBHOOK_SECRET,
                    booking_target=booking,
                    processor_poll_interval_seconds="0.2",
                    **stripe,
                ),
            ),
        }
        gateway = start(
            "gateway",
            "gateway",
            env(
                "gateway",
                gateway_port=str(ports["gateway"]),
                gateway_host="127.0.0.1",
                booking_target=booking,
                availability_target=availability,
                sse_heartbeat_seconds="1",
            ),
        )
        targets = {"booking": booking, "availability": availability, "webhooks": webhooks}
        for name, process in grpc_services.items():
            await wait_until_serving(targets[name], process, logs[name])
        await wait_until_listening(fake, logs["fake-stripe"])
        gateway_url = f"http://127.0.0.1:{ports['gateway']}"
        await wait_until_ready(f"{gateway_url}/readyz", gateway, logs["gateway"])
        metrics = {name: f"http://127.0.0.1:{port}/metrics" for name, port in metrics_ports.items()}
        metrics["gateway"] = f"{gateway_url}/metrics"
        yield Stack(gateway_url, fake_stripe, database_url, logs, metrics)


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
