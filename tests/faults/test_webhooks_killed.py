"""The webhook service SIGKILLed with a paid checkout's event in its inbox:

1. stored (Stripe was answered 200) but not yet applied: the booking service
   is out of its reach, so its processor holds the event, waiting;
2. applied by the booking service, but the answer never reached the
   processor, so the event is not marked applied.

After a normal restart each event is applied exactly once: the booking is
confirmed once (one audit row, nothing refunded), and Stripe delivering the
event again changes nothing. Customers keep holding places through the
gateway all along.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from devtools.engines import free_port
from tests.support.availability import eventually
from tests.support.fault_books import assert_books_balance, assert_outbox_published
from tests.support.fault_load import HoldLoad
from tests.support.faults import UNLIMITED_GATEWAY, Answers, Promises, resource_with_slots
from tests.support.redis_server import RedisServer
from tests.support.stack import Stack, api_key, running_stack
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.faults

LIMIT_SECONDS = 120
# The one slot the paid holds take (2 places each) and two for the load.
SLOTS = (4, 3, 200)


async def inbox_row(db: asyncpg.Pool, event_id: str) -> Any:
    return await db.fetchrow(
        "SELECT status, outcome, attempts, last_error FROM stripe_events WHERE event_id = $1",
        event_id,
    )


async def being_applied(db: asyncpg.Pool, event_id: str) -> bool:
    """Stored, not applied, and claimed by a processor (its row is locked)."""
    row = await inbox_row(db, event_id)
    if row is None or row["status"] != "PENDING":
        return False
    free = await db.fetchval(
        "SELECT event_id FROM stripe_events WHERE event_id = $1 FOR UPDATE SKIP LOCKED", event_id
    )
    return free is None


async def hold_status(db: asyncpg.Pool, hold: str) -> str:
    status: str = await db.fetchval("SELECT status FROM holds WHERE id = $1::uuid", hold)
    return status


async def confirmations(db: asyncpg.Pool, hold: str) -> int:
    count: int = await db.fetchval(
        "SELECT count(*) FROM audit_log WHERE entity_id = $1::uuid AND action = 'hold.confirmed'",
        hold,
    )
    return count


class Shop:
    """A customer's side: holds and checkouts through the gateway, paying
    at the fake Stripe, and what Stripe saw of the deliveries."""

    def __init__(self, api: httpx.AsyncClient, fake: httpx.AsyncClient) -> None:
        self.api = api
        self.fake = fake

    async def held_checkout(self, resource: str, slot: str, key: str) -> tuple[str, str]:
        """A hold of 2 places and its open checkout: (hold id, session id)."""
        held = await self.api.post(
            "/v1/holds",
            json={"resource_id": resource, "slot_ids": [slot], "quantity": 2},
            headers={"Idempotency-Key": key},
        )
        assert held.status_code == 201, held.text
        hold: str = held.json()["id"]
        checkout = await self.api.post(f"/v1/holds/{hold}/checkout")
        assert checkout.status_code == 200, checkout.text
        return hold, checkout.json()["session_id"]

    async def pay(self, session: str) -> str:
        """The customer pays; returns the checkout.session.completed event's id."""
        paid = await self.fake.post(f"/_fake/checkout/sessions/{session}/pay")
        assert paid.status_code == 200, paid.text
        event: str = paid.json()["id"]
        return event

    async def acknowledged(self, event: str) -> list[int | None]:
        """The statuses the webhook endpoint answered each delivery of `event`."""
        found = await self.fake.get("/_fake/deliveries", params={"event_id": event})
        return [attempt["status"] for attempt in found.json()["data"]]

    async def redeliver(self, event: str) -> None:
        sent = await self.fake.post("/_fake/events/deliver", json={"events": [event]})
        assert sent.status_code == 200, sent.text


async def applied_once(db: asyncpg.Pool, shop: Shop, event: str, hold: str) -> None:
    """The event is applied (after the restart), the hold confirmed once, no
    refund, and a redelivery is a no-op."""
    row = await eventually(
        lambda: inbox_row(db, event), lambda r: r["status"] == "APPLIED", within=30
    )
    assert row["outcome"] == "confirmed", dict(row)
    assert await hold_status(db, hold) == "CONFIRMED"
    assert await confirmations(db, hold) == 1
    assert await db.fetchval("SELECT count(*) FROM refunds WHERE hold_id = $1::uuid", hold) == 0

    before = len(await shop.acknowledged(event))
    await shop.redeliver(event)
    statuses = await eventually(
        lambda: shop.acknowledged(event), lambda s: len(s) > before and s[-1] is not None
    )
    assert statuses[-1] == 200, statuses
    again = await inbox_row(db, event)
    assert (again["status"], again["attempts"]) == ("APPLIED", row["attempts"]), dict(again)
    assert await confirmations(db, hold) == 1


async def test_webhooks_killed_between_storing_and_applying(
    own_database: str,
    redis_server: RedisServer,
    tmp_path: Path,
    report_figure: Callable[[str, float], None],
) -> None:
    booking_port = free_port()
    # The processor reaches the booking service through a proxy the test cuts
    # or makes deaf; it waits for the service as long as it takes, so the
    # kill always lands while it holds the event.
    booking_proxy = TcpProxy("127.0.0.1", booking_port)
    webhooks_settings = {
        "booking_target": booking_proxy.address,
        "booking_call_timeout_seconds": "60",
    }
    promises = Promises()
    async with (
        asyncio.timeout(LIMIT_SECONDS),
        booking_proxy,
        running_stack(
            own_database,
            redis_server.url,
            tmp_path,
            ports={"booking": booking_port},
            settings={"gateway": UNLIMITED_GATEWAY, "webhooks": webhooks_settings},
        ) as stack,
        asyncpg.create_pool(own_database, min_size=1, max_size=3) as db,
        httpx.AsyncClient(
            base_url=stack.gateway, headers=await api_key(own_database), timeout=15
        ) as api,
        httpx.AsyncClient(base_url=stack.fake_stripe, timeout=15) as fake,
    ):
        shop = Shop(api, fake)
        resource, [paid_slot, *load_slots] = await resource_with_slots(api, SLOTS)
        first_checkout = await shop.held_checkout(resource, paid_slot, "paid-1")
        second_checkout = await shop.held_checkout(resource, paid_slot, "paid-2")
        answers = Answers()
        load = HoldLoad(api, resource, load_slots, answers, prefix="webhooks", pause=0.1)
        stop = asyncio.Event()
        running = asyncio.create_task(load.run(stop, customers=2))
        try:
            await _kill_while_stored(
                stack, booking_proxy, db, shop, first_checkout, promises, report_figure
            )
            await _kill_while_applied(stack, booking_proxy, db, shop, second_checkout, promises)
        finally:
            stop.set()
            await running

        await _check_the_books(db, fake, answers, promises)
        print(f"answers: {dict(answers.summary())}")
    promises.assert_kept()


async def _kill_while_stored(
    stack: Stack,
    booking_proxy: TcpProxy,
    db: asyncpg.Pool,
    shop: Shop,
    checkout: tuple[str, str],
    promises: Promises,
    report_figure: Callable[[str, float], None],
) -> None:
    """Kills the webhook service with an event stored and not yet applied."""
    first_hold, first_session = checkout
    # 1. Stored, not applied.
    await booking_proxy.cut()
    first_event = await shop.pay(first_session)
    await eventually(lambda: shop.acknowledged(first_event), lambda s: 200 in s)
    await eventually(lambda: being_applied(db, first_event), bool, within=20)
    assert await hold_status(db, first_hold) == "HELD"
    stack.kill("webhooks")
    await booking_proxy.start()
    await stack.restart("webhooks")
    restarted = time.monotonic()
    await promises.check(
        "a stored event is applied once after the restart",
        lambda: applied_once(db, shop, first_event, first_hold),
    )
    report_figure("webhooks restarted -> stored event applied", time.monotonic() - restarted)


async def _kill_while_applied(
    stack: Stack,
    booking_proxy: TcpProxy,
    db: asyncpg.Pool,
    shop: Shop,
    checkout: tuple[str, str],
    promises: Promises,
) -> None:
    """Kills the webhook service with an event the booking service applied,
    its answer lost on the way."""
    second_hold, second_session = checkout
    # 2. Applied by the booking service, the answer lost on the way.
    booking_proxy.hold_answers()
    second_event = await shop.pay(second_session)
    await eventually(lambda: shop.acknowledged(second_event), lambda s: 200 in s)
    await eventually(lambda: hold_status(db, second_hold), lambda s: s == "CONFIRMED")
    assert await being_applied(db, second_event), "the processor let go of the event"
    stack.kill("webhooks")
    booking_proxy.release_answers()
    await booking_proxy.cut()
    await booking_proxy.start()
    await stack.restart("webhooks")
    await promises.check(
        "an event applied but not recorded is applied once after the restart",
        lambda: applied_once(db, shop, second_event, second_hold),
    )


async def _check_the_books(
    db: asyncpg.Pool, fake: httpx.AsyncClient, answers: Answers, promises: Promises
) -> None:
    await promises.check("every answer as designed (no 500)", answers.assert_as_designed)
    await promises.check("nothing oversold, nothing half-written", lambda: assert_books_balance(db))
    await promises.check("every change published", lambda: assert_outbox_published(db, within=10))

    async def stripe_answered_as_designed() -> None:
        found = (await fake.get("/_fake/deliveries")).json()["data"]
        # None: the endpoint was down (killed), and Stripe tried again.
        wrong = [
            (a["event_type"], a["status"]) for a in found if a["status"] not in (200, 503, None)
        ]
        assert not wrong, f"deliveries answered otherwise: {wrong}"
        assert all(any(b["ok"] for b in found if b["event_id"] == a["event_id"]) for a in found)

    await promises.check(
        "Stripe's deliveries answered 200 (or 503), each event taken in the end",
        stripe_answered_as_designed,
    )
    dead = await db.fetchval("SELECT count(*) FROM stripe_events WHERE status = 'DEAD'")
    await promises.check("no event dead-lettered", lambda: _none(dead))


def _none(count: int) -> None:
    assert count == 0, f"{count} events need an operator"
