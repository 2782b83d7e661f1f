"""Stripe in tests: the real `stripe` client pointed at a fake Stripe, and a
webhook receiver that checks signatures the way a real endpoint must.

stripe-python's HTTPXClient sends its form body as `data=<str>`, which httpx
0.28 answers with a DeprecationWarning; tests that call Stripe need
`STRIPE_CLIENT_WARNING` in their filterwarnings (the warning is the
library's, not ours, and harmless).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import stripe
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from stripe.params.checkout import SessionCreateParams

from devtools.fakestripe import FakeStripe
from holdfast.platform.http_server import HttpHost

STRIPE_CLIENT_WARNING = (
    "ignore:Use 'content=<...>' to upload raw bytes/text content.:DeprecationWarning"
)


@asynccontextmanager
async def stripe_client(
    fake: FakeStripe, api_key: str | None = None
) -> AsyncIterator[stripe.StripeClient]:
    """The client the services build (holdfast.platform.stripe_api), on the fake.

    No network retries: a test sees each request exactly once."""
    http_client = stripe.HTTPXClient(timeout=10)
    try:
        yield stripe.StripeClient(
            api_key or fake.api_key,
            base_addresses={"api": fake.base_url},
            http_client=http_client,
            max_network_retries=0,
        )
    finally:
        # stripe's HTTPXClient carries no annotations.
        await http_client.close_async()  # type: ignore[no-untyped-call]


def session_params(**overrides: Any) -> SessionCreateParams:
    """Checkout session parameters like the booking service's: 2 x 25.00 EUR
    (`overrides` may be wrong on purpose, hence Any)."""
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {
                    "currency": "eur",
                    "unit_amount": 2500,
                    "product_data": {"name": "Harbour tour"},
                },
                "quantity": 2,
            }
        ],
        "client_reference_id": "hold-1",
        "metadata": {"hold_id": "hold-1", "tenant": "t-1"},
        "payment_intent_data": {"metadata": {"hold_id": "hold-1"}},
        "expires_at": int(time.time()) + 3600,
        "success_url": "https://shop.example/done?session={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://shop.example/cancelled",
    }
    params.update(overrides)
    return cast("SessionCreateParams", params)


@dataclass(frozen=True)
class ReceivedWebhook:
    body: bytes
    signature: str
    # As stripe.Webhook.construct_event built it from the verified body.
    event: stripe.Event
    status: int


class WebhookReceiver:
    """A webhook endpoint on a port of its own that verifies every request
    with `stripe.Webhook.construct_event` (400 if that fails) and otherwise
    answers the `statuses` given, in turn, then 200."""

    def __init__(self, secret: str, statuses: Iterable[int] = ()) -> None:
        self.secret = secret
        self.statuses = list(statuses)
        self.received: list[ReceivedWebhook] = []
        self.rejected: list[str] = []
        self._arrived = asyncio.Condition()
        app = Starlette(routes=[Route("/stripe/webhook", self._receive, methods=["POST"])])
        self._server = HttpHost(app, "127.0.0.1", 0, grace_seconds=2.0)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.port}/stripe/webhook"

    async def __aenter__(self) -> WebhookReceiver:
        await self._server.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._server.stop()

    def event_ids(self) -> list[str]:
        return [r.event.id for r in self.received]

    async def wait_for(self, count: int, deadline: float = 5.0) -> list[ReceivedWebhook]:
        """The first `count` requests answered (verified ones), waiting at
        most `deadline` seconds for them."""
        async with asyncio.timeout(deadline), self._arrived:
            await self._arrived.wait_for(lambda: len(self.received) >= count)
        return self.received[:count]

    async def _receive(self, request: Request) -> Response:
        body = await request.body()
        header = request.headers.get("stripe-signature", "")
        try:
            event = stripe.Webhook.construct_event(body, header, self.secret)
        except (stripe.SignatureVerificationError, ValueError) as error:
            self.rejected.append(str(error))
            return Response(status_code=400)
        status = self.statuses.pop(0) if self.statuses else 200
        async with self._arrived:
            self.received.append(ReceivedWebhook(body, header, event, status))
            self._arrived.notify_all()
        return Response(status_code=status)
