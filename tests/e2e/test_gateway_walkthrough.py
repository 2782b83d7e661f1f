"""The walkthrough `make up` prints, over real HTTP with every piece a process
of its own: list resources → availability → hold → checkout → pay at the
fake Stripe → the booking confirmed → availability changed, while an SSE
subscriber sees the change.

Booking, availability, webhooks, the gateway (`python -m gateway`) and the
fake Stripe run on free ports, with a database and a Redis of the test's own
(tests.support.stack).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.availability import eventually
from tests.support.gateway import Event, EventStream
from tests.support.redis_server import RedisServer
from tests.support.stack import Stack, api_key, harbour_tour, running_stack

pytestmark = pytest.mark.e2e

WINDOW = {"start": "2031-05-31T00:00:00Z", "end": "2031-06-30T00:00:00Z"}


@pytest.fixture
async def stack(
    own_database: str, redis_server: RedisServer, tmp_path: Path
) -> AsyncIterator[Stack]:
    async with running_stack(own_database, redis_server.url, tmp_path) as running:
        yield running


def slot_numbers(availability: dict[str, Any]) -> tuple[int, int, int]:
    [slot] = availability["slots"]
    return slot["available"], slot["held"], slot["booked"]


async def test_browse_hold_pay_and_see_it_booked(stack: Stack) -> None:
    auth = await api_key(stack.database_url)
    async with httpx.AsyncClient(base_url=stack.gateway, headers=auth, timeout=15) as api:
        # The operator's inventory, through the admin routes.
        resource, slot = await harbour_tour(api)

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

    assert "Traceback" not in stack.logs["gateway"].read_text()
