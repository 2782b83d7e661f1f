"""Stripe slow (sitting on every answer), then down (connections refused),
then back, under load through the gateway:

- holds, availability reads and the availability stream keep working, and a
  change shows on the stream and in availability without waiting for
  Stripe (invalidations never queue behind payment calls);
- checkout answers (slowly) or a 503 with Retry-After, never a 500, and a
  retry later gives one session per hold, not two;
- the Stripe actions that fell due meanwhile (expiring the sessions of
  released holds) are carried out once Stripe is back, with no operator.

Stripe is the fake Stripe behind a proxy the test makes slow or cuts: a
stopped Stripe looks the same to its clients (connection refused), while
the fake keeps the sessions a real Stripe would keep.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from devtools.engines import free_port
from devtools.fakestripe import DEFAULT_API_KEY
from tests.support.availability import eventually
from tests.support.fault_books import assert_books_balance, assert_outbox_published, unpublished
from tests.support.fault_load import HoldLoad
from tests.support.fault_stream import Subscriber, slot_numbers
from tests.support.faults import UNLIMITED_GATEWAY, WINDOW, Answers, Promises, resource_with_slots
from tests.support.gateway import EventStream
from tests.support.redis_server import RedisServer
from tests.support.stack import api_key, running_stack
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.faults

LIMIT_SECONDS = 150
CHECKOUT = "POST /v1/holds/{id}/checkout"
# The slot holds with checkouts take (one place each), and two for the load.
SLOTS = (20, 3, 200)


class Shop:
    def __init__(self, api: httpx.AsyncClient, answers: Answers, resource: str, slot: str) -> None:
        self.api = api
        self.answers = answers
        self.resource = resource
        self.slot = slot
        self.keys = 0

    async def hold(self, quantity: int = 1) -> str:
        self.keys += 1
        held = await self.answers.call(
            "POST /v1/holds",
            self.api.post(
                "/v1/holds",
                json={"resource_id": self.resource, "slot_ids": [self.slot], "quantity": quantity},
                headers={"Idempotency-Key": f"shop-{self.keys}"},
            ),
        )
        assert held.status == 201, held
        hold: str = held.body["id"]
        return hold

    async def checkout(self, hold: str) -> Any:
        return await self.answers.call(CHECKOUT, self.api.post(f"/v1/holds/{hold}/checkout"))

    async def release(self, hold: str) -> None:
        released = await self.answers.call(
            "DELETE /v1/holds/{id}", self.api.delete(f"/v1/holds/{hold}")
        )
        assert released.status == 200, released


async def test_stripe_slow_then_down_then_back(
    own_database: str,
    redis_server: RedisServer,
    tmp_path: Path,
    report_figure: Callable[[str, float], None],
) -> None:
    stripe_port = free_port()
    stripe_proxy = TcpProxy("127.0.0.1", stripe_port)
    via_proxy = {"stripe_api_base": f"http://{stripe_proxy.address}"}
    promises = Promises()
    async with (
        asyncio.timeout(LIMIT_SECONDS),
        stripe_proxy,
        running_stack(
            own_database,
            redis_server.url,
            tmp_path,
            ports={"stripe": stripe_port},
            settings={"gateway": UNLIMITED_GATEWAY, "booking": via_proxy, "webhooks": via_proxy},
        ) as stack,
        asyncpg.create_pool(own_database, min_size=1, max_size=3) as db,
        httpx.AsyncClient(
            base_url=stack.gateway, headers=await api_key(own_database), timeout=30
        ) as api,
        httpx.AsyncClient(
            base_url=stack.fake_stripe,
            headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"},
            timeout=15,
        ) as stripe,
    ):
        resource, [slot, *load_slots] = await resource_with_slots(api, SLOTS)
        answers = Answers()
        shop = Shop(api, answers, resource, slot)
        paying, sessions = await _checkouts_while_stripe_is_well(shop)
        stream_path = f"/v1/resources/{resource}/availability/stream"
        load = HoldLoad(api, resource, load_slots, answers, prefix="stripe", pause=0.1)
        stop = asyncio.Event()
        async with api.stream("GET", stream_path, params=WINDOW) as subscription:
            assert subscription.status_code == 200
            subscriber = Subscriber(EventStream(subscription))
            reading = asyncio.create_task(subscriber.read())
            running = asyncio.create_task(load.run(stop, customers=2))
            scene = Scene(api, db, stripe, stripe_proxy, shop, subscriber, promises, report_figure)
            try:
                slow_hold = await _stripe_slow(scene, paying)
                down_hold = await _stripe_down(scene, paying)
                await _stripe_back(scene, paying, sessions, down_hold, slow_hold)
                await asyncio.sleep(0.5)
            finally:
                stop.set()
                await running
                reading.cancel()
                await asyncio.gather(reading, return_exceptions=True)

        await _check_the_books(db, answers, promises)
        print(f"answers: {dict(answers.summary())}")
    promises.assert_kept()


async def _checkouts_while_stripe_is_well(shop: Shop) -> tuple[list[str], dict[str, str]]:
    """Holds with open checkouts, made while Stripe is well: the holds, and
    their sessions by hold."""
    paying = [await shop.hold() for _ in range(3)]
    sessions = {}
    for hold in paying:
        checkout = await shop.checkout(hold)
        assert checkout.status == 200, checkout
        sessions[hold] = checkout.body["session_id"]
    return paying, sessions


@dataclass
class Scene:
    """What each phase of the test works with."""

    api: httpx.AsyncClient
    db: asyncpg.Pool
    stripe: httpx.AsyncClient
    stripe_proxy: TcpProxy
    shop: Shop
    subscriber: Subscriber
    promises: Promises
    report_figure: Callable[[str, float], None]

    async def numbers_now(self) -> tuple[int, int, int]:
        row = await self.db.fetchrow(
            "SELECT capacity - held - booked AS a, held, booked FROM slots WHERE id = $1::uuid",
            self.shop.slot,
        )
        return row["a"], row["held"], row["booked"]

    async def probe(self, within: float) -> tuple[str, float]:
        """A new hold (of 3 places: numbers the slot never showed before);
        returns it and how long it took to show on the stream and in
        availability."""
        resource, slot = self.shop.resource, self.shop.slot
        since = time.monotonic()
        hold = await self.shop.hold(quantity=3)
        now = await self.numbers_now()
        arrived, _ = await self.subscriber.wait_for(
            lambda numbers: slot_numbers(numbers, slot) == now, within=within, after=since
        )

        async def read() -> tuple[int, int, int]:
            got = await self.api.get(f"/v1/resources/{resource}/availability", params=WINDOW)
            return slot_numbers(got.json(), slot)

        await eventually(read, lambda n: n == now, within=within, interval=0.05)
        return hold, max(arrived, time.monotonic()) - since


async def _stripe_slow(scene: Scene, paying: list[str]) -> str:
    """Stripe sits on its answers until a change has shown (well within the
    services' 10 s Stripe timeout): whatever shows meanwhile did not wait for
    Stripe. Returns the hold whose checkout waited for it."""
    shop, stripe_proxy = scene.shop, scene.stripe_proxy
    stripe_proxy.hold_answers()
    sent = stripe_proxy.bytes_sent
    # Releasing a hold whose checkout is open expires its session
    # at Stripe, after the commit: two slow Stripe calls are due.
    await shop.release(paying[0])
    await shop.release(paying[1])
    await eventually(lambda: _value(stripe_proxy.bytes_sent), lambda n: n > sent)
    slow_hold = await shop.hold()
    slow_checkout = asyncio.create_task(shop.checkout(slow_hold))

    async def invalidated_while_slow() -> None:
        _, lag = await scene.probe(within=15)
        scene.report_figure("invalidation lag while Stripe is slow", lag)
        assert not slow_checkout.done(), "shown only once Stripe answered"

    await scene.promises.check(
        "a change shows without waiting for a slow Stripe", invalidated_while_slow
    )
    stripe_proxy.release_answers()
    await slow_checkout
    return slow_hold


async def _stripe_down(scene: Scene, paying: list[str]) -> str:
    """Stripe refuses connections; returns the hold whose checkout was refused."""
    shop = scene.shop
    await scene.stripe_proxy.cut()
    await shop.release(paying[2])
    down_hold = await shop.hold()
    refused = await shop.checkout(down_hold)

    def checkout_unavailable() -> None:
        assert refused.status == 503, refused
        assert refused.reason == "PAYMENT_PROVIDER_UNAVAILABLE", refused
        assert refused.retry_after is not None, refused

    await scene.promises.check(
        "checkout answers 503 with Retry-After while Stripe is down",
        checkout_unavailable,
    )

    async def invalidated_while_down() -> None:
        _, lag = await scene.probe(within=15)
        scene.report_figure("invalidation lag while Stripe is down", lag)

    await scene.promises.check(
        "availability and the stream keep up while Stripe is down",
        invalidated_while_down,
    )
    await asyncio.sleep(1.0)
    return down_hold


async def _stripe_back(
    scene: Scene, paying: list[str], sessions: dict[str, str], down_hold: str, slow_hold: str
) -> None:
    db, stripe, shop = scene.db, scene.stripe, scene.shop
    await scene.stripe_proxy.start()
    back = time.monotonic()

    async def actions_done() -> None:
        await eventually(lambda: unpublished(db, "payments"), lambda n: n == 0, within=30)
        scene.report_figure("Stripe back -> its pending actions done", time.monotonic() - back)
        for hold in paying:
            session = (await stripe.get(f"/v1/checkout/sessions/{sessions[hold]}")).json()
            assert session["status"] == "expired", session
            status = await db.fetchval(
                "SELECT status FROM checkouts WHERE hold_id = $1::uuid", hold
            )
            assert status == "EXPIRED", (hold, status)

    await scene.promises.check("the Stripe actions due meanwhile are done", actions_done)
    retried = await shop.checkout(down_hold)
    again = await shop.checkout(slow_hold)

    async def one_session_each() -> None:
        assert retried.status == 200, retried
        assert again.status == 200, again
        created = (
            await stripe.get(
                "/_fake/requests",
                params={"method": "POST", "path": "/v1/checkout/sessions"},
            )
        ).json()["data"]
        for hold in (down_hold, slow_hold):
            made = [
                r
                for r in created
                if r["params"].get("client_reference_id") == hold
                and r["status"] == 200
                and not r["replayed"]
            ]
            assert len(made) == 1, (hold, made)

    await scene.promises.check("one Stripe session per hold", one_session_each)


async def _check_the_books(db: asyncpg.Pool, answers: Answers, promises: Promises) -> None:
    await promises.check(
        "every answer as designed (no 500)",
        lambda: answers.assert_as_designed(),
    )
    await promises.check("nothing oversold, nothing half-written", lambda: assert_books_balance(db))
    await promises.check("every change published", lambda: assert_outbox_published(db, within=15))


async def _value(value: int) -> int:
    return value
