"""A fake Stripe: the slice of Stripe's API holdfast uses, served over HTTP.

The real `stripe` client works against it with only its API base changed:
Stripe's object shapes, error format and idempotency keys, and signed webhook
events sent the way Stripe sends them (plus duplicates, reordering, delays
and retries on request). Tests run it in-process (`FakeStripe`); `make up`
runs it as `python -m holdfast.fakestripe` when no Stripe key is set.
"""
