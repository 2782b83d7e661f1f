"""AIP-158 pagination: page sizes and opaque keyset page tokens.

A token carries the position after the last row returned and a fingerprint
of what it was issued for (the list, the tenant, the filters), and is signed
with an HMAC of the service's page-token secret. A token that was changed,
made by hand, or issued for another list, tenant or filters is refused as an
invalid `page_token`, never read: a caller cannot steer a query with it.

The secret is one per service, shared by all its replicas through the
database (`page_token_secret`), so a token issued by one replica is taken
by every other.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import asyncpg

from holdfast.platform.validation import Violations

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
# Far above any token issued (about 200 characters), far below a cost.
MAX_TOKEN_LENGTH = 1024
_MAC_BYTES = 32
_FOREIGN = "is not a token this service issued"
_ELSEWHERE = "belongs to another list, tenant or other filters"
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class Cursor:
    """Position in a list ordered by (time, id)."""

    time: datetime
    id: str

    @property
    def uuid(self) -> uuid.UUID:
        """The id of a list keyed by UUID (checked when the token was read)."""
        return uuid.UUID(self.id)


def is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def page_size(violations: Violations, requested: int) -> int:
    """0 means the default; larger than the maximum is lowered to it (AIP-158)."""
    if requested < 0:
        violations.add("page_size", "must not be negative")
        return DEFAULT_PAGE_SIZE
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    return min(requested, MAX_PAGE_SIZE)


def _fingerprint(listing: str, filters: object) -> str:
    blob = json.dumps([listing, filters], sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _b64decode(token: str) -> bytes | None:
    if not _BASE64URL.match(token):
        return None
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None


class PageTokens:
    """Issues and reads the page tokens of one service.

    `listing` names the list ("ListBookings"), `filters` is everything else
    that shapes it (tenant included): any JSON-able value, compared whole."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("a page-token secret needs at least 16 bytes")
        self._secret = secret

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()

    def encode(self, cursor: Cursor, listing: str, filters: object) -> str:
        payload = json.dumps(
            {"k": cursor.time.isoformat(), "i": cursor.id, "f": _fingerprint(listing, filters)},
            separators=(",", ":"),
        ).encode()
        return base64.urlsafe_b64encode(payload + self._mac(payload)).decode().rstrip("=")

    def decode(
        self,
        violations: Violations,
        token: str,
        listing: str,
        filters: object,
        id_is_valid: Callable[[str], bool] = is_uuid,
    ) -> Cursor | None:
        """The cursor in `token`, or None with a violation on `page_token`
        ("" is the first page: None without one)."""
        if not token:
            return None
        raw = _b64decode(token) if len(token) <= MAX_TOKEN_LENGTH else None
        if raw is None or len(raw) <= _MAC_BYTES:
            violations.add("page_token", _FOREIGN)
            return None
        payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if not hmac.compare_digest(mac, self._mac(payload)):
            violations.add("page_token", _FOREIGN)
            return None
        # Signed by this service, so well-formed; checked all the same, so
        # that a leaked secret still cannot make a query fail.
        cursor, fingerprint = _read(payload, id_is_valid)
        if cursor is None:
            violations.add("page_token", _FOREIGN)
            return None
        if fingerprint != _fingerprint(listing, filters):
            violations.add("page_token", _ELSEWHERE)
            return None
        return cursor

    def split_page(
        self,
        found: Sequence[T],
        size: int,
        cursor_of: Callable[[T], Cursor],
        listing: str,
        filters: object,
    ) -> tuple[list[T], str]:
        """Splits rows fetched with `LIMIT size + 1` into the page and the
        token of the next one ("" on the last page)."""
        page = list(found[:size])
        if len(found) <= size:
            return page, ""
        return page, self.encode(cursor_of(page[-1]), listing, filters)


def _read(payload: bytes, id_is_valid: Callable[[str], bool]) -> tuple[Cursor | None, object]:
    try:
        fields = json.loads(payload)
        at, ident, fingerprint = fields["k"], fields["i"], fields["f"]
        if not (isinstance(at, str) and isinstance(ident, str) and id_is_valid(ident)):
            return None, None
        time = datetime.fromisoformat(at)
    except (ValueError, KeyError, TypeError):
        return None, None
    if time.tzinfo is None:
        return None, None
    return Cursor(time, ident), fingerprint


async def page_token_secret(pool: asyncpg.Pool, service: str) -> bytes:
    """The service's page-token secret, made by whichever replica asks first.

    Every replica of a service must sign alike, and the database is what they
    already share: no setting to distribute, none to forget. Deleting the row
    (and restarting the service) rotates it; tokens issued before then are
    refused, and their clients start their list again."""
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO page_token_secrets (service, secret) VALUES ($1, $2)"
            " ON CONFLICT (service) DO NOTHING",
            service,
            secrets.token_bytes(32),
        )
        secret: bytes = await conn.fetchval(
            "SELECT secret FROM page_token_secrets WHERE service = $1", service
        )
    return secret
