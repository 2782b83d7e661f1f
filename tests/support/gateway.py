"""Helpers for tests of the HTTP gateway: tenants with keys, and calls."""

from __future__ import annotations

from datetime import datetime

from gateway.keys import SCOPES, KeyRepository


async def key_for(
    keys: KeyRepository,
    tenant: str,
    scopes: tuple[str, ...] = SCOPES,
    *,
    expires_at: datetime | None = None,
    rate_per_second: int | None = None,
) -> dict[str, str]:
    """Headers authenticating as a new key of `tenant` (made if need be)."""
    await keys.create_tenant(tenant, f"tenant {tenant}")
    made = await keys.create_key(
        tenant, scopes, expires_at=expires_at, rate_per_second=rate_per_second
    )
    return {"Authorization": f"Bearer {made.token}"}
