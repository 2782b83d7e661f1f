"""The AIP-155 key of an idempotent request, read from its proto."""

from __future__ import annotations

import hashlib

from google.protobuf.message import Message

from holdfast.platform.validation import Violations
from services.booking.domain import RequestKey

MAX_REQUEST_ID = 128


def request_key(violations: Violations, method: str, request: Message) -> RequestKey | None:
    """The AIP-155 key of a request: its request_id and a hash of everything else."""
    request_id: str = getattr(request, "request_id", "")
    if not request_id:
        return None
    violations.text("request_id", request_id, max_length=MAX_REQUEST_ID)
    body = type(request)()
    body.CopyFrom(request)
    body.ClearField("request_id")
    digest = hashlib.sha256(body.SerializeToString(deterministic=True)).digest()
    return RequestKey(request_id, method, digest)
