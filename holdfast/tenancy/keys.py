"""Tenants and API keys in Postgres: making, finding, checking and revoking them.

A key reads `hf_<prefix>_<secret>`. The prefix (public, unique) finds the
row; the secret is compared by its SHA-256 in constant time. The secret is
256 random bits, so a slow password hash would add nothing but latency.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from holdfast.platform.db import database_unavailable
from holdfast.platform.records import from_record
from holdfast.tenancy import KEY


@dataclass(frozen=True)
class ApiKey:
    id: uuid.UUID
    prefix: str
    tenant_id: str
    name: str
    scopes: tuple[str, ...]
    rate_per_second: int | None
    expires_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime

    def usable_at(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


@dataclass(frozen=True)
class NewKey:
    """A key just made: the only time its full text exists."""

    key: ApiKey
    token: str


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def split_token(token: str) -> tuple[str, str] | None:
    """(prefix, secret) of a well-formed key, else None."""
    match = KEY.match(token)
    return (match.group(1), match.group(2)) if match else None


def _key(row: asyncpg.Record) -> ApiKey:
    return from_record(ApiKey, row, scopes=tuple(row["scopes"]))


class KeyRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create_tenant(self, tenant_id: str, name: str) -> bool:
        """False if the tenant already exists."""
        async with database_unavailable():
            created = await self._pool.fetchval(
                "INSERT INTO tenants (id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING"
                " RETURNING true",
                tenant_id,
                name,
            )
        return bool(created)

    async def tenant_exists(self, tenant_id: str) -> bool:
        async with database_unavailable():
            return bool(
                await self._pool.fetchval("SELECT true FROM tenants WHERE id = $1", tenant_id)
            )

    async def create_key(
        self,
        tenant_id: str,
        scopes: tuple[str, ...],
        *,
        name: str = "",
        expires_at: datetime | None = None,
        rate_per_second: int | None = None,
    ) -> NewKey:
        prefix = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        async with database_unavailable():
            row = await self._pool.fetchrow(
                """
                INSERT INTO api_keys (prefix, secret_hash, tenant_id, name, scopes,
                                      rate_per_second, expires_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7)
                RETURNING *
                """,
                prefix,
                _hash(secret),
                tenant_id,
                name,
                list(scopes),
                rate_per_second,
                expires_at,
            )
        return NewKey(_key(row), f"hf_{prefix}_{secret}")

    async def ping(self) -> None:
        """Returns once the key store answers; raises if it does not."""
        await self._pool.fetchval("SELECT 1")

    async def find(self, token: str) -> ApiKey | None:
        """The key `token` is, if it is one (usable or not)."""
        parts = split_token(token)
        if parts is None:
            return None
        prefix, secret = parts
        async with database_unavailable():
            row = await self._pool.fetchrow("SELECT * FROM api_keys WHERE prefix = $1", prefix)
        if row is None or not hmac.compare_digest(bytes(row["secret_hash"]), _hash(secret)):
            return None
        return _key(row)

    async def list_keys(self, tenant_id: str) -> list[ApiKey]:
        async with database_unavailable():
            rows = await self._pool.fetch(
                "SELECT * FROM api_keys WHERE tenant_id = $1 ORDER BY created_at DESC", tenant_id
            )
        return [_key(row) for row in rows]

    async def revoke(self, key_id: uuid.UUID) -> ApiKey | None:
        async with database_unavailable():
            row = await self._pool.fetchrow(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1"
                " RETURNING *",
                key_id,
            )
        return _key(row) if row else None
