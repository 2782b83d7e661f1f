"""What the fake Stripe's integration tests share (tests/integration/devtools/):
a second account's key, short retries, and creating a checkout session."""

from __future__ import annotations

import stripe

from devtools.fakestripe import RetryPolicy
from tests.support.stripe import session_params

SECOND_KEY = "sk_test_second_account"
# Short retries, so the tests can watch a whole schedule.
FAST_RETRIES = RetryPolicy(max_attempts=3, backoff_seconds=0.05, max_backoff_seconds=0.2)


async def create_session(
    client: stripe.StripeClient, **overrides: object
) -> stripe.checkout.Session:
    return await client.v1.checkout.sessions.create_async(session_params(**overrides))
