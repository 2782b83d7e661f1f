"""The walkthrough `make up` prints, over real HTTP with every piece a process
of its own: list resources → availability → hold → checkout → pay at the
fake Stripe → the booking confirmed → availability changed, while an SSE
subscriber sees the change.

Booking, availability, webhooks, the gateway (`python -m gateway`) and the
fake Stripe run on free ports, with a database and a Redis of the test's own.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from gateway.keys import SCOPES, KeyRepository
from holdfast.engines import free_port, stop_child, tail
from holdfast.fakestripe import DEFAULT_API_KEY, DEFAULT_WEBHOOK_SECRET
from tests.support.availability import eventually
from tests.support.gateway import Event, EventStream
from tests.support.processes import service_env, start_service, wait_until_serving
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.e2e

WINDOW = {"start": "2031-05-31T00:00:00Z", "end": "2031-06-30T00:00:00Z"}


@dataclass
class Stack:
    gateway: str
    fake_stripe: str
    database_url: str
    gateway_log: Path


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


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of the test's own: the stream and caches of its own database."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.kill()


@pytest.fixture
async def stack(
    own_database: str, redis_server: RedisServer, tmp_path: Path
) -> AsyncIterator[Stack]:
    ports = {name: free_port() for name in ("booking", "availability", "webhooks", "http")}
    ports.update(gateway=free_port(), stripe=free_port())
    fake_stripe = f"http://127.0.0.1:{ports['stripe']}"
    stripe = {"stripe_api_key": DEFAULT_API_KEY, "stripe_api_base": fake_stripe}

    def env(**settings: str) -> dict[str, str]:
        return service_env(own_database, redis_url=redis_server.url, **settings)

    booking = f"127.0.0.1:{ports['booking']}"
    availability = f"127.0.0.1:{ports['availability']}"
    webhooks = f"127.0.0.1:{ports['webhooks']}"
    with processes() as started:

        def start(module: str, settings: dict[str, str]) -> tuple[subprocess.Popen[bytes], Path]:
            log = tmp_path / f"{module}.log"
            started.append((start_service(module, settings, log), log))
            return started[-1]

        fake = start(
            "holdfast.fakestripe",
            {
                "HOLDFAST_FAKE_STRIPE_PORT": str(ports["stripe"]),
                "HOLDFAST_FAKE_STRIPE_WEBHOOK_URL": f"http://127.0.0.1:{ports['http']}/stripe/webhook",
                "HOLDFAST_FAKE_STRIPE_RETRY_BACKOFF_SECONDS": "0.2",
            },
        )
        services = [
            (booking, start("services.booking", env(booking_port=str(ports["booking"]), **stripe))),
            (
                availability,
                start("services.availability", env(availability_port=str(ports["availability"]))),
            ),
            (
                webhooks,
                start(
                    "services.webhooks",
                    env(
                        webhooks_port=str(ports["webhooks"]),
                        webhooks_http_port=str(ports["http"]),
                        webhooks_http_host="127.0.0.1",
                        webhooks_metrics_port="0",
                        stripe_webhook_secrets=DEFAULT_WEBHOOK_SECRET,
                        booking_target=booking,
                        processor_poll_interval_seconds="0.2",
                        **stripe,
                    ),
                ),
            ),
        ]
        gateway = start(
            "gateway",
            env(
                gateway_port=str(ports["gateway"]),
                gateway_host="127.0.0.1",
                booking_target=booking,
                availability_target=availability,
                sse_heartbeat_seconds="1",
            ),
        )
        for target, (process, log) in services:
            await wait_until_serving(target, process, log)
        await wait_until_listening(*fake)
        await wait_until_ready(f"http://127.0.0.1:{ports['gateway']}/readyz", *gateway)
        yield Stack(f"http://127.0.0.1:{ports['gateway']}", fake_stripe, own_database, gateway[1])


async def api_key(database_url: str) -> dict[str, str]:
    """A new tenant and a key with every scope, as `holdfast keys create` makes."""
    tenant = f"walk-{uuid.uuid4().hex[:8]}"
    async with asyncpg.create_pool(database_url, min_size=1, max_size=1) as pool:
        keys = KeyRepository(pool)
        await keys.create_tenant(tenant, "Walkthrough")
        made = await keys.create_key(tenant, SCOPES, name="walkthrough")
    return {"Authorization": f"Bearer {made.token}"}


def slot_numbers(availability: dict[str, Any]) -> tuple[int, int, int]:
    [slot] = availability["slots"]
    return slot["available"], slot["held"], slot["booked"]


async def test_browse_hold_pay_and_see_it_booked(stack: Stack) -> None:
    auth = await api_key(stack.database_url)
    async with httpx.AsyncClient(base_url=stack.gateway, headers=auth, timeout=15) as api:
        # The operator's inventory, through the admin routes.
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
        resource = made.json()["id"]
        slots = await api.post(
            f"/v1/resources/{resource}/slots",
            json={"slots": [{"start": "2031-06-01T09:00:00Z", "end": "2031-06-01T10:00:00Z"}]},
        )
        assert slots.status_code == 201, slots.text
        [slot] = [s["id"] for s in slots.json()["items"]]

        # A customer browses.
        listed = await api.get("/v1/resources")
        assert [r["id"] for r in listed.json()["items"]] == [resource]
        availability_path = f"/v1/resources/{resource}/availability"
        before = await api.get(availability_path, params=WINDOW)
        assert slot_numbers(before.json()) == (4, 0, 0)

        async with api.stream("GET", f"{availability_path}/stream", params=WINDOW) as subscription:
            assert subscription.status_code == 200
            stream = EventStream(subscription)
            first = await stream.next_event(within=10)
            assert slot_numbers(first.json()) == (4, 0, 0)

            # Holds two places and pays for them.
            held = await api.post(
                "/v1/holds",
                json={"resource_id": resource, "slot_ids": [slot], "quantity": 2},
                headers={"Idempotency-Key": f"walk-{uuid.uuid4()}"},
            )
            assert held.status_code == 201, held.text
            hold = held.json()["id"]
            checkout = await api.post(f"/v1/holds/{hold}/checkout")
            assert checkout.status_code == 200, checkout.text
            assert checkout.json()["url"].startswith(stack.fake_stripe)
            assert checkout.json()["amount"] == {"currency": "EUR", "amount_minor": 5000}
            async with httpx.AsyncClient(base_url=stack.fake_stripe, timeout=15) as browser:
                paid = await browser.post(
                    f"/_fake/checkout/sessions/{checkout.json()['session_id']}/pay"
                )
            assert paid.status_code == 200, paid.text

            async def booking() -> dict[str, Any]:
                answer: dict[str, Any] = (await api.get(f"/v1/bookings/{hold}")).json()
                return answer

            confirmed = await eventually(booking, lambda b: b["status"] == "confirmed", within=20)
            assert confirmed["payment_ref"]

            async def availability() -> tuple[int, int, int]:
                return slot_numbers((await api.get(availability_path, params=WINDOW)).json())

            assert await eventually(availability, lambda n: n == (2, 0, 2)) == (2, 0, 2)

            # The subscriber saw the hold, then the booking, as they happened.
            seen: list[Event] = []
            async with asyncio.timeout(10):
                while not seen or slot_numbers(seen[-1].json()) != (2, 0, 2):
                    seen.append(await stream.next_event(within=10))
            assert len({e.id for e in [first, *seen]}) == len(seen) + 1

    assert "Traceback" not in stack.gateway_log.read_text()
