"""The README's table for three at 19:30, with every piece a process of its
own: the demo's restaurant set up as `make up` does (devtools.demo_windowed,
over gRPC), its window availability over HTTP, a hold for a party of 3 at
19:30 (POST /v1/holds with a window and a party size), checkout and payment
at the fake Stripe, the booking confirmed, and the window stream showing the
table taken.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import grpc
import httpx
import pytest

from devtools.demo_windowed import RESTAURANT, ensure_windowed
from holdfast.contracts.booking.v1 import inventory_pb2_grpc
from holdfast.tenancy import SCOPES
from holdfast.tenancy.keys import KeyRepository
from tests.support.availability import eventually
from tests.support.gateway import EventStream
from tests.support.redis_server import RedisServer
from tests.support.stack import Stack, running_stack

pytestmark = pytest.mark.e2e

LISBON = ZoneInfo("Europe/Lisbon")
# A Tuesday far ahead (the bistro closes on Mondays), past any lead time.
DAY = date(2031, 6, 3)
QUERY = {"first_date": DAY.isoformat(), "last_date": DAY.isoformat(), "party_size": "3"}


@pytest.fixture
async def stack(
    own_database: str, redis_server: RedisServer, tmp_path: Path
) -> AsyncIterator[Stack]:
    async with running_stack(own_database, redis_server.url, tmp_path) as running:
        yield running


async def tenant_and_key(database_url: str) -> tuple[str, dict[str, str]]:
    tenant = f"e2e-{uuid.uuid4().hex[:8]}"
    async with asyncpg.create_pool(database_url, min_size=1, max_size=1) as pool:
        keys = KeyRepository(pool)
        await keys.create_tenant(tenant, "End to end")
        made = await keys.create_key(tenant, SCOPES, name="e2e")
    return tenant, {"Authorization": f"Bearer {made.token}"}


def t4a_free(answer: dict[str, Any]) -> list[tuple[str, str]]:
    [t4a] = [u for u in answer["units"] if u["name"] == "T4a"]
    return [(f["start"], f["end"]) for f in t4a["free"]]


async def test_a_table_for_three_at_half_past_seven(stack: Stack) -> None:
    tenant, auth = await tenant_and_key(stack.database_url)
    metadata = (("x-tenant-id", tenant),)
    call = {"metadata": metadata, "timeout": 10}
    with grpc.insecure_channel(stack.targets["booking"]) as channel:
        inventory = inventory_pb2_grpc.InventoryServiceStub(channel)
        await asyncio.to_thread(ensure_windowed, inventory, RESTAURANT, None, "Europe/Lisbon", call)
    start = datetime(2031, 6, 3, 19, 30, tzinfo=LISBON).astimezone(UTC)
    async with httpx.AsyncClient(base_url=stack.gateway, headers=auth, timeout=15) as api:
        [bistro] = [r["id"] for r in (await api.get("/v1/resources")).json()["items"]]
        path = f"/v1/resources/{bistro}/window-availability"
        before = await api.get(path, params=QUERY)
        assert before.status_code == 200, before.text
        starts = {s["start"]: s["unit_id"] for s in before.json()["starts"]}
        t4a = {u["name"]: u["unit_id"] for u in before.json()["units"]}["T4a"]
        assert starts[start.isoformat().replace("+00:00", "Z")] == t4a

        async with api.stream("GET", f"{path}/stream", params=QUERY) as subscription:
            assert subscription.status_code == 200
            stream = EventStream(subscription)
            first = await stream.next_event(within=10)
            assert t4a_free(first.json()) == t4a_free(before.json())

            held = await api.post(
                "/v1/holds",
                json={
                    "resource_id": bistro,
                    "window": {
                        "start_time": start.isoformat(),
                        "end_time": (start + timedelta(hours=2)).isoformat(),
                    },
                    "party_size": 3,
                },
                headers={"Idempotency-Key": f"table-{uuid.uuid4()}"},
            )
            assert held.status_code == 201, held.text
            hold_id = held.json()["id"]
            assert held.json()["window"]["unit_name"] == "T4a"
            checkout = await api.post(f"/v1/holds/{hold_id}/checkout")
            assert checkout.status_code == 200, checkout.text
            assert checkout.json()["amount"] == {"currency": "EUR", "amount_minor": 1000}
            async with httpx.AsyncClient(base_url=stack.fake_stripe, timeout=15) as browser:
                paid = await browser.post(
                    f"/_fake/checkout/sessions/{checkout.json()['session_id']}/pay"
                )
            assert paid.status_code == 200, paid.text

            async def booking() -> dict[str, Any]:
                answer: dict[str, Any] = (await api.get(f"/v1/bookings/{hold_id}")).json()
                return answer

            confirmed = await eventually(booking, lambda b: b["status"] == "confirmed", within=20)
            assert confirmed["payment_ref"]

            # T4a is taken from 19:30 until 21:45 (the turnover), over HTTP and in the stream.
            gap_start = start.isoformat().replace("+00:00", "Z")

            async def free_of_t4a() -> list[tuple[str, str]]:
                return t4a_free((await api.get(path, params=QUERY)).json())

            free = await eventually(free_of_t4a, lambda f: any(e == gap_start for _, e in f))
            seen = first
            async with asyncio.timeout(15):
                while t4a_free(seen.json()) != free:
                    seen = await stream.next_event(within=10)
    assert "Traceback" not in stack.logs["gateway"].read_text()
