"""Payments in tests: a stack paying through a fake Stripe, and helpers to
read checkouts, hold states and the webhook inbox through the real services
and Postgres."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import grpc
import httpx

from devtools.fakestripe import FakeStripe, FakeStripeConfig, RetryPolicy
from gateway.server import GatewayApp
from holdfast.contracts.booking.v1 import booking_pb2
from services.availability.server import AvailabilityApp
from services.booking.server import BookingApp
from services.webhooks.events import HANDLED_EVENTS
from services.webhooks.server import WebhooksApp
from tests.support.availability import eventually
from tests.support.booking import BookingClient
from tests.support.databases import fresh_database
from tests.support.services import (
    running_availability,
    running_booking,
    running_gateway,
    running_webhooks,
)
from tests.support.stripe_events import SECRET, signed
from tests.support.tcp_proxy import TcpProxy


@dataclass
class PaymentStack:
    """A fake Stripe, a booking service paying through it and a webhook
    service it delivers to (reaching the booking service through `proxy`,
    which a test can cut), on a database of their own; an availability
    service and a gateway when asked for."""

    fake: FakeStripe
    booking: BookingApp
    webhooks: WebhooksApp
    proxy: TcpProxy
    db: asyncpg.Pool
    database_url: str
    channel: grpc.aio.Channel
    availability: AvailabilityApp | None = None
    availability_channel: grpc.aio.Channel | None = None
    gateway: GatewayApp | None = None

    def stripe_settings(self) -> dict[str, object]:
        return {"stripe_api_key": self.fake.api_key, "stripe_api_base": self.fake.base_url}

    async def reconcile(self) -> int:
        """One pass of the booking service's payment reconciler."""
        assert self.booking.reconciler is not None
        return await self.booking.reconciler.run_once()

    async def post_event(self, sent: dict[str, Any]) -> None:
        """Delivers an event the test built, signed, as Stripe would."""
        body, headers = signed(sent)
        url = f"http://127.0.0.1:{self.webhooks.http_port}/stripe/webhook"
        async with httpx.AsyncClient() as http:
            assert (await http.post(url, content=body, headers=headers)).status_code == 200

    def refund_requests(self, payment_ref: str) -> list[Any]:
        """The refunds of `payment_ref` Stripe made (not idempotent replays)."""
        return [
            r
            for r in self.fake.requests(method="POST", path="/v1/refunds")
            if r.params.get("payment_intent") == payment_ref and not r.replayed and r.status == 200
        ]


@asynccontextmanager
async def payment_stack(
    database_url: str,
    *,
    with_availability: bool = False,
    with_gateway: bool = False,
    booking: dict[str, object] | None = None,
    webhooks: dict[str, object] | None = None,
) -> AsyncIterator[PaymentStack]:
    fake = FakeStripe(
        FakeStripeConfig(
            enabled_events=HANDLED_EVENTS,
            retry=RetryPolicy(max_attempts=3, backoff_seconds=0.1, max_backoff_seconds=0.5),
        )
    )
    async with AsyncExitStack() as parts:
        await fake.start()
        parts.push_async_callback(fake.stop)
        stripe = {"stripe_api_key": fake.api_key, "stripe_api_base": fake.base_url}
        url = await parts.enter_async_context(fresh_database(database_url))
        db = await parts.enter_async_context(asyncpg.create_pool(url, min_size=1, max_size=3))
        booking_app = await parts.enter_async_context(
            running_booking(
                url,
                **{
                    "sweeper_interval_seconds": 0.1,
                    "reconciler_interval_seconds": 3600,
                    **stripe,
                    **(booking or {}),
                },
            )
        )
        proxy = TcpProxy("127.0.0.1", booking_app.port)
        await proxy.start()
        parts.push_async_callback(proxy.cut)
        webhooks_app = await parts.enter_async_context(
            running_webhooks(
                url,
                proxy.address,
                **{
                    "stripe_webhook_secrets": f"{fake.webhook_secret},{SECRET}",
                    **stripe,
                    **(webhooks or {}),
                },
            )
        )
        booking_target = f"127.0.0.1:{booking_app.port}"
        channel = await parts.enter_async_context(grpc.aio.insecure_channel(booking_target))
        stack = PaymentStack(fake, booking_app, webhooks_app, proxy, db, url, channel)
        if with_availability or with_gateway:
            stack.availability = await parts.enter_async_context(running_availability(url))
            target = f"127.0.0.1:{stack.availability.port}"
            stack.availability_channel = await parts.enter_async_context(
                grpc.aio.insecure_channel(target)
            )
            if with_gateway:
                stack.gateway = await parts.enter_async_context(
                    running_gateway(url, booking_target, target)
                )
        fake.configure_webhook(f"http://127.0.0.1:{webhooks_app.http_port}/stripe/webhook")
        yield stack


async def checkout(
    client: BookingClient, hold_id: str, success_url: str = "", cancel_url: str = ""
) -> booking_pb2.Checkout:
    response = await client.booking.StartCheckout(
        booking_pb2.StartCheckoutRequest(
            hold_id=hold_id, success_url=success_url, cancel_url=cancel_url
        ),
        metadata=client.md,
    )
    result: booking_pb2.Checkout = response.checkout
    return result


async def hold_status(client: BookingClient, hold_id: str) -> booking_pb2.Hold:
    response = await client.booking.GetHold(
        booking_pb2.GetHoldRequest(hold_id=hold_id), metadata=client.md
    )
    hold: booking_pb2.Hold = response.hold
    return hold


async def until_status(
    client: BookingClient, hold_id: str, status: booking_pb2.HoldStatus.ValueType
) -> booking_pb2.Hold:
    return await eventually(lambda: hold_status(client, hold_id), lambda h: h.status == status)


async def inbox_row(db: asyncpg.Pool, event_id: str) -> Any:
    return await db.fetchrow(
        "SELECT status, outcome, last_error FROM stripe_events WHERE event_id = $1", event_id
    )


async def settled_row(db: asyncpg.Pool, event_id: str) -> Any:
    """The inbox row of an event once the processor is done with it."""
    return await eventually(
        lambda: inbox_row(db, event_id),
        lambda r: r is not None and r["status"] in ("APPLIED", "IGNORED", "DEAD"),
    )


@dataclass
class Held:
    """A hold on one slot, with its open checkout."""

    resource_id: str
    slot_id: str
    hold: booking_pb2.Hold
    session: booking_pb2.Checkout


async def held_checkout(
    client: BookingClient, capacity: int = 2, ttl_seconds: float | None = None
) -> Held:
    resource, [slot] = await client.resource_with_slots(capacity=capacity)
    hold = await client.hold(resource.resource_id, [slot.slot_id], ttl_seconds=ttl_seconds)
    return Held(resource.resource_id, slot.slot_id, hold, await checkout(client, hold.hold_id))
