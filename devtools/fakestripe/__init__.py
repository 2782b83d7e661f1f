"""A fake Stripe: the slice of Stripe's API holdfast uses, served over HTTP.

The real `stripe` client works against it with only its API base changed:
Stripe's object shapes, error format and idempotency keys, and signed webhook
events sent the way Stripe sends them (plus duplicates, reordering, delays
and retries on request), and Stripe slow or down on request. Tests run it
in-process (`FakeStripe`); `make up` runs it as `python -m devtools.fakestripe`
when no Stripe key is set.
"""

from devtools.fakestripe.config import (
    DEFAULT_API_KEY,
    DEFAULT_PORT,
    DEFAULT_WEBHOOK_SECRET,
    FakeStripeConfig,
    FakeStripeSettings,
)
from devtools.fakestripe.delivery import DeliveryAttempt, RetryPolicy
from devtools.fakestripe.errors import StripeError
from devtools.fakestripe.events import CHECKOUT_EVENTS
from devtools.fakestripe.server import FakeStripe
from devtools.fakestripe.signing import signature, signature_header
from devtools.fakestripe.store import RecordedRequest, StartedRequest

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
