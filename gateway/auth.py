"""Who is calling: the API key in `Authorization: Bearer hf_...`, its tenant
and scopes. Keys are cached briefly in-process (hashed), so most requests
never touch Postgres; a revocation or expiry takes effect within the cache
time (HOLDFAST_KEY_CACHE_SECONDS)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.keys import ApiKey, KeyRepository
from gateway.problems import ProblemError

_CACHE_LIMIT = 10_000


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


class Authenticator:
    def __init__(self, keys: KeyRepository, cache_seconds: float) -> None:
        self._keys = keys
        self._cache_seconds = cache_seconds
        self._cache: dict[bytes, tuple[ApiKey | None, float]] = {}

    async def principal(self, authorization: str | None) -> Principal:
        if not authorization:
            raise _unauthenticated("send your API key as `Authorization: Bearer <key>`")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthenticated("the Authorization header must read `Bearer <key>`")
        key = await self._lookup(token.strip())
        if key is None:
            raise _unauthenticated("the API key is not valid")
        if key.revoked_at is not None:
            raise _unauthenticated("the API key was revoked")
        if not key.usable_at(datetime.now(UTC)):
            raise _unauthenticated("the API key has expired")
        return Principal(key.tenant_id, key.prefix, frozenset(key.scopes), key.rate_per_second)

    async def _lookup(self, token: str) -> ApiKey | None:
        digest = hashlib.sha256(token.encode()).digest()
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[1] > now:
            return cached[0]
        key = await self._keys.find(token)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[digest] = (key, now + self._cache_seconds)
        return key


def require_scope(principal: Principal, scope: str) -> None:
    if scope not in principal.scopes:
        raise ProblemError(403, "MISSING_SCOPE", f"this API key lacks the `{scope}` scope")
