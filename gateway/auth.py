"""Who is calling: the API key in `Authorization: Bearer hf_...`, its tenant
and scopes. Keys are cached briefly in-process (hashed), so most requests
never touch Postgres; a revocation or expiry takes effect within the cache
time (HOLDFAST_KEY_CACHE_SECONDS).

While the key store (Postgres) cannot be reached, the last answer read for a
key is used for a while longer (HOLDFAST_KEY_OUTAGE_GRACE_SECONDS past the
cache time): callers known a moment ago keep working, a key seen revoked,
expired or unknown stays refused, and a key never seen is answered 503 (it
cannot be checked), never 401."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.problems import ProblemError
from holdfast.platform.errors import DomainError, ErrorKind
from holdfast.tenancy.keys import ApiKey, KeyRepository

log = logging.getLogger(__name__)

_CACHE_LIMIT = 10_000
# After the key store failed, it is not asked again for this long: while it
# is away, every request would otherwise wait for its own failed connect.
_STORE_RETRY_SECONDS = 1.0


@dataclass(frozen=True)
class Principal:
    tenant: str
    key_prefix: str
    scopes: frozenset[str]
    rate_per_second: int | None


def _unauthenticated(detail: str) -> ProblemError:
    return ProblemError(
        401, "UNAUTHENTICATED", detail, headers={"WWW-Authenticate": 'Bearer realm="holdfast"'}
    )


@dataclass(frozen=True)
class _Cached:
    key: ApiKey | None  # None: no such key
    fresh_until: float  # time.monotonic()


class Authenticator:
    def __init__(
        self,
        keys: KeyRepository,
        cache_seconds: float,
        outage_grace_seconds: float = 0.0,
        on_grace: Callable[[], None] = lambda: None,
    ) -> None:
        self._keys = keys
        self._cache_seconds = cache_seconds
        self._grace = outage_grace_seconds
        self._on_grace = on_grace
        self._cache: dict[bytes, _Cached] = {}
        self._store_down_until = 0.0

    async def principal(self, authorization: str | None) -> Principal:
        if not authorization:
            raise _unauthenticated("send your API key as `Authorization: Bearer <key>`")
        token = _token(authorization)
        if token is None:
            raise _unauthenticated("the Authorization header must read `Bearer <key>`")
        key = await self._lookup(token)
        if key is None:
            raise _unauthenticated("the API key is not valid")
        if key.revoked_at is not None:
            raise _unauthenticated("the API key was revoked")
        if not key.usable_at(datetime.now(UTC)):
            raise _unauthenticated("the API key has expired")
        return _principal_of(key)

    def cached_principal(self, authorization: str | None) -> Principal | None:
        """The caller, if its key was read within the cache time and was
        good then and is still unexpired; None for anything else (ask
        `principal`, which reads or refuses it). No I/O."""
        token = _token(authorization) if authorization else None
        if token is None:
            return None
        cached = self._cache.get(hashlib.sha256(token.encode()).digest())
        if cached is None or cached.key is None or cached.fresh_until <= time.monotonic():
            return None
        key = cached.key
        if key.revoked_at is not None or not key.usable_at(datetime.now(UTC)):
            return None
        return _principal_of(key)

    async def _lookup(self, token: str) -> ApiKey | None:
        digest = hashlib.sha256(token.encode()).digest()
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached.fresh_until > now:
            return cached.key
        try:
            key = await self._read(token, now)
        except DomainError as error:
            if error.kind is not ErrorKind.UNAVAILABLE:
                raise
            if cached is None or now >= cached.fresh_until + self._grace:
                raise  # never read, or read too long ago: it cannot be checked (503)
            self._on_grace()
            return cached.key
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[digest] = _Cached(key, now + self._cache_seconds)
        return key

    async def _read(self, token: str, now: float) -> ApiKey | None:
        """The key from the store; UNAVAILABLE at once for a moment after the
        store failed."""
        if now < self._store_down_until:
            raise _store_unavailable()
        try:
            return await self._keys.find(token)
        except DomainError as error:
            if error.kind is ErrorKind.UNAVAILABLE:
                self._store_down_until = time.monotonic() + _STORE_RETRY_SECONDS
            raise


def _token(authorization: str) -> str | None:
    """The key of a `Bearer <key>` header; None if it reads otherwise."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _principal_of(key: ApiKey) -> Principal:
    return Principal(key.tenant_id, key.prefix, frozenset(key.scopes), key.rate_per_second)


def _store_unavailable() -> DomainError:
    return DomainError(
        ErrorKind.UNAVAILABLE,
        "KEY_STORE_UNAVAILABLE",
        "API keys cannot be checked right now; retry",
        retry_after=_STORE_RETRY_SECONDS,
    )


def require_scope(principal: Principal, scope: str) -> None:
    if scope not in principal.scopes:
        raise ProblemError(403, "MISSING_SCOPE", f"this API key lacks the `{scope}` scope")
