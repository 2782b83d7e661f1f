"""AIP-158 pagination: page sizes and opaque keyset page tokens.

A token carries the position after the last row returned plus a fingerprint of
the request's filters, so a token cannot be replayed with other filters.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from holdfast.platform.validation import Violations

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


@dataclass(frozen=True)
class Cursor:
    """Position in a list ordered by (sort_key, id)."""

    sort_key: str
    id: str

    def sort_time(self) -> datetime:
        return datetime.fromisoformat(self.sort_key)


def page_size(violations: Violations, requested: int) -> int:
    """0 means the default; larger than the maximum is lowered to it (AIP-158)."""
    if requested < 0:
        violations.add("page_size", "must not be negative")
        return DEFAULT_PAGE_SIZE
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    return min(requested, MAX_PAGE_SIZE)


def _fingerprint(filters: object) -> str:
    blob = json.dumps(filters, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def encode_token(cursor: Cursor, filters: object) -> str:
    payload = {"k": cursor.sort_key, "i": cursor.id, "f": _fingerprint(filters)}
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def decode_token(violations: Violations, token: str, filters: object) -> Cursor | None:
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        cursor = Cursor(str(payload["k"]), str(payload["i"]))
        if payload["f"] != _fingerprint(filters):
            violations.add("page_token", "belongs to a request with other filters")
            return None
        return cursor
    except (ValueError, KeyError, TypeError, binascii.Error):
        violations.add("page_token", "is not a token this service issued")
        return None


def split_page(
    found: Sequence[T], size: int, cursor_of: Callable[[T], Cursor], filters: object
) -> tuple[list[T], str]:
    """Splits rows fetched with `LIMIT size + 1` into the page and the token of
    the next one ("" on the last page)."""
    page = list(found[:size])
    if len(found) <= size:
        return page, ""
    return page, encode_token(cursor_of(page[-1]), filters)
