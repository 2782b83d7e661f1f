"""Signatures the fake makes are the ones stripe-python checks."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest
import stripe

from devtools.fakestripe.signing import signature, signature_header

SECRET = "whsec_test_secret"
PAYLOAD = b'{\n  "id": "evt_1",\n  "object": "event"\n}'


def test_the_header_is_t_and_v1_over_timestamp_dot_body() -> None:
    header = signature_header(PAYLOAD, SECRET, timestamp=1_700_000_000)
    expected = hmac.new(SECRET.encode(), b"1700000000." + PAYLOAD, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert signature(PAYLOAD, SECRET, 1_700_000_000) == expected


def test_stripe_python_accepts_a_fresh_signature() -> None:
    assert stripe.WebhookSignature.verify_header(
        PAYLOAD.decode(), signature_header(PAYLOAD, SECRET), SECRET, tolerance=300
    )


@pytest.mark.parametrize(
    ("timestamp", "secret"),
    [
        (time.time() - 301, SECRET),
        (time.time(), "whsec_other"),
    ],
)
def test_stripe_python_rejects_stale_or_wrongly_keyed_signatures(
    timestamp: float, secret: str
) -> None:
    header = signature_header(PAYLOAD, secret, timestamp)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(PAYLOAD.decode(), header, SECRET, tolerance=300)
