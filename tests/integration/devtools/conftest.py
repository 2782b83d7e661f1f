"""Fixtures for the fake Stripe's tests: a running fake with two API keys and
short retries, a `stripe` client for it, and a receiver it sends webhooks to."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import stripe

from devtools.fakestripe import FakeStripe, FakeStripeConfig
from tests.support.fake_stripe import FAST_RETRIES, SECOND_KEY
from tests.support.stripe import WebhookReceiver, stripe_client


@pytest.fixture
async def fake() -> AsyncIterator[FakeStripe]:
    config = FakeStripeConfig(api_keys=("sk_test_holdfast_fake", SECOND_KEY), retry=FAST_RETRIES)
    async with FakeStripe(config) as running:
        yield running


@pytest.fixture
async def client(fake: FakeStripe) -> AsyncIterator[stripe.StripeClient]:
    async with stripe_client(fake) as c:
        yield c


@pytest.fixture
async def receiver(fake: FakeStripe) -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver(fake.webhook_secret) as r:
        fake.configure_webhook(r.url)
        yield r
