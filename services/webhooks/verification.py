"""Is this request really from Stripe? The signature check, on the raw bytes.

The `stripe` package does the cryptography (`WebhookSignature.verify_header`,
constant-time comparison of every `v1` signature in the header). Around it:
several secrets at once, for rotation, and a check the library leaves out:
it refuses signatures too old, but not ones from the future.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import stripe


class BadSignature(Exception):
    """The request is not a genuine, recent Stripe delivery; the message says why."""


def _timestamp(header: str) -> int:
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            try:
                return int(value)
            except ValueError:
                break
    raise BadSignature("the Stripe-Signature header has no valid timestamp")


def verify(
    payload: bytes,
    header: str | None,
    secrets: Sequence[str],
    tolerance_seconds: int,
    now: float | None = None,
) -> None:
    """Returns if `payload` was signed with one of `secrets` within
    ±`tolerance_seconds` of now; raises BadSignature otherwise."""
    if not header:
        raise BadSignature("the Stripe-Signature header is missing")
    current = time.time() if now is None else now
    signed_at = _timestamp(header)
    if signed_at > current + tolerance_seconds:
        raise BadSignature("the signature's timestamp is in the future")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise BadSignature("the body is not UTF-8") from None
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(text, header, secret, tolerance_seconds)
        except stripe.SignatureVerificationError as error:
            reason = str(error.user_message or error)
            if "tolerance" in reason.lower():
                raise BadSignature("the signature's timestamp is too old") from None
            continue
        return
    raise BadSignature("no signature matches a configured secret")
