"""`Stripe-Signature` headers, computed exactly as Stripe computes them.

`t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" keyed with the whole
endpoint secret, "whsec_" included>`. Public so tests of a webhook receiver
can sign any payload with any timestamp and secret (stale, future, wrong).
"""

from __future__ import annotations

import hashlib
import hmac
import time


def signature(payload: bytes, secret: str, timestamp: int) -> str:
    """The hex `v1` signature of `payload` sent at `timestamp`."""
    signed = str(timestamp).encode() + b"." + payload
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def signature_header(
    payload: bytes | str, secret: str, timestamp: int | float | None = None
) -> str:
    """The `Stripe-Signature` header value for `payload` (now, unless told)."""
    raw = payload.encode("utf-8") if isinstance(payload, str) else payload
    t = int(time.time() if timestamp is None else timestamp)
    return f"t={t},v1={signature(raw, secret, t)}"
