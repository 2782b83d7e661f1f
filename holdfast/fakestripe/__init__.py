"""A fake Stripe: the slice of Stripe's API holdfast uses, served over HTTP.

The real `stripe` client works against it with only its API base changed:
Stripe's object shapes, error format and idempotency keys, and signed webhook
events sent the way Stripe sends them (plus duplicates, reordering, delays
and retries on request), and Stripe slow or down on request. Tests run it
in-process (`FakeStripe`); `make up` runs it as `python -m holdfast.fakestripe`
when no Stripe key is set.
"""

from holdfast.fakestripe.config import (
    DEFAULT_API_KEY,
    DEFAULT_PORT,
    DEFAULT_WEBHOOK_SECRET,
    FakeStripeConfig,
    FakeStripeSettings,
)
from holdfast.fakestripe.delivery import DeliveryAttempt, RetryPolicy
from holdfast.fakestripe.errors import StripeError
from holdfast.fakestripe.events import CHECKOUT_EVENTS
from holdfast.fakestripe.server import FakeStripe
from holdfast.fakestripe.signing import signature, signature_header
from holdfast.fakestripe.store import RecordedRequest, StartedRequest

__all__ = [
    "CHECKOUT_EVENTS",
    "DEFAULT_API_KEY",
    "DEFAULT_PORT",
    "DEFAULT_WEBHOOK_SECRET",
    "DeliveryAttempt",
    "FakeStripe",
    "FakeStripeConfig",
    "FakeStripeSettings",
    "RecordedRequest",
    "RetryPolicy",
    "StartedRequest",
    "StripeError",
    "signature",
    "signature_header",
]
