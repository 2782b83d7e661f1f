"""Tenants and their API keys: the rules (what a tenant id is, which scopes
exist, what a key looks like) and the repository of keys. One owner for the
gateway, which checks keys, the `holdfast` command, which makes and revokes
them, and the demo.

The rules are here, free of any I/O, so that `holdfast --help` need not load
a database driver to know the scopes.
"""

from __future__ import annotations

import re

# What tenants.id accepts (migration 0006's CHECK), said before Postgres says it,
# and what every gRPC call's x-tenant-id must be.
TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
TENANT_ID_RULE = "1-63 lower-case letters, digits, '-' or '_', starting with a letter or digit"

SCOPES = ("availability:read", "holds:write", "bookings:read", "bookings:write", "inventory:admin")
# What a key gets unless it asks: what a storefront needs; inventory:admin must be asked for.
DEFAULT_SCOPES = ("availability:read", "holds:write", "bookings:read", "bookings:write")

# A key reads hf_<prefix>_<secret>: the prefix (public, unique) finds its row,
# the secret is compared by its SHA-256.
KEY = re.compile(r"^hf_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$")
# A key's public prefix, as `keys list` shows it and the gateway logs it
# (api-key:<prefix>); a whole key names its prefix too.
KEY_PREFIX = re.compile(r"^(?:hf_)?([a-z0-9]{12})(?:_[A-Za-z0-9_-]+)?$")


def is_tenant_id(value: str) -> bool:
    return bool(TENANT_ID.match(value))
