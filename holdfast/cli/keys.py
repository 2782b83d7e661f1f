"""`holdfast keys`: make, list and revoke a tenant's API keys.

A key's secret exists only in the output of `keys create`; the database
keeps its SHA-256, so `keys list` shows everything but the secret.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from holdfast.cli.database import AdminError, AdminTree, require_tenant, when, with_repository
from holdfast.tenancy import DEFAULT_SCOPES, KEY_PREFIX, SCOPES

if TYPE_CHECKING:
    import asyncpg

    from holdfast.tenancy.keys import ApiKey, KeyRepository


def parse_scopes(values: list[str]) -> tuple[str, ...]:
    """The scopes of repeated and/or comma-separated --scope values, in the
    gateway's order; every unknown one named, with the valid ones."""
    known = SCOPES
    asked = {part.strip() for value in values for part in value.split(",") if part.strip()}
    if not asked:
        return DEFAULT_SCOPES
    if "all" in asked:
        asked = (asked - {"all"}) | set(known)
    unknown = sorted(asked - set(known))
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        raise AdminError(
            f"unknown scope{'s' if len(unknown) > 1 else ''} {names}; the scopes are: "
            + ", ".join(known)
            + " (or all)"
        )
    return tuple(scope for scope in known if scope in asked)


def expiry(
    expires_in_days: float | None, expires_at: datetime | None, now: datetime
) -> datetime | None:
    """When a new key stops working, from --expires-in or --expires-at (None: never)."""
    if expires_in_days is not None:
        if expires_in_days <= 0:
            raise AdminError("--expires-in must be a positive number of days")
        return now + timedelta(days=expires_in_days)
    if expires_at is not None and expires_at <= now:
        raise AdminError(f"--expires-at {when(expires_at)} is not in the future")
    return expires_at


def _instant(text: str) -> datetime:
    """An ISO 8601 time; without an offset it is UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time such as 2030-05-01T00:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def _show_new_key(key: ApiKey, token: str, default_rate: str) -> None:
    print(f"key       {token}")
    print(f"id        {key.id}")
    print(f"tenant    {key.tenant_id}")
    print(f"prefix    {key.prefix}")
    print(f"name      {key.name or '-'}")
    print(f"scopes    {' '.join(key.scopes)}")
    print(f"expires   {when(key.expires_at)}")
    rate = f"{key.rate_per_second}/s" if key.rate_per_second else default_rate
    print(f"rate      {rate}")


async def _keys_create(args: argparse.Namespace) -> int:
    scopes = parse_scopes(args.scope)
    expires_at = expiry(args.expires_in, args.expires_at, datetime.now(UTC))

    async def create(keys: KeyRepository, pool: asyncpg.Pool) -> int:
        await require_tenant(keys, args.tenant)
        made = await keys.create_key(
            args.tenant,
            scopes,
            name=args.name,
            expires_at=expires_at,
            rate_per_second=args.rate,
        )
        if args.quiet:
            print(made.token)
        else:
            _show_new_key(
                made.key,
                made.token,
                "the gateway's default (HOLDFAST_RATE_LIMIT_PER_KEY, 50/s unless set)",
            )
        print(
            ("" if args.quiet else "\n")
            + "This is the only time the key is shown: store it now. holdfast keeps only its"
            " hash; a lost key cannot be recovered, only revoked and replaced.",
            file=sys.stderr,
        )
        return 0

    return await with_repository(args, create)


async def _keys_list(args: argparse.Namespace) -> int:
    async def show(keys: KeyRepository, pool: asyncpg.Pool) -> int:
        await require_tenant(keys, args.tenant)
        found = await keys.list_keys(args.tenant)
        if not found:
            print(f"tenant {args.tenant} has no keys (holdfast keys create --tenant {args.tenant})")
            return 0
        now = datetime.now(UTC)
        rows = [
            ["id", "prefix", "name", "state", "created", "expires", "revoked", "rate", "scopes"]
        ]
        for key in found:
            if key.revoked_at is not None:
                state = "revoked"
            elif not key.usable_at(now):
                state = "expired"
            else:
                state = "active"
            rows.append(
                [
                    str(key.id),
                    key.prefix,
                    key.name or "-",
                    state,
                    when(key.created_at),
                    when(key.expires_at),
                    when(key.revoked_at, never="-"),
                    f"{key.rate_per_second}/s" if key.rate_per_second else "default",
                    ",".join(key.scopes),
                ]
            )
        _print_table(rows)
        return 0

    return await with_repository(args, show)


def _print_table(rows: list[list[str]]) -> None:
    """Columns as wide as their widest cell; the last one as it comes."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]))


async def _key_id(pool: asyncpg.Pool, text: str) -> uuid.UUID:
    """KEY_ID as `keys list` shows it, or the key's prefix (as the gateway logs it)."""
    prefix = KEY_PREFIX.match(text)
    if prefix:
        found: uuid.UUID | None = await pool.fetchval(
            "SELECT id FROM api_keys WHERE prefix = $1", prefix.group(1)
        )
        if found is None:
            raise AdminError(f"no key has the prefix {prefix.group(1)}")
        return found
    try:
        return uuid.UUID(text)
    except ValueError:
        raise AdminError(
            f"{text!r} is neither a key id (a UUID, the first column of `holdfast keys list`)"
            " nor a key prefix (12 characters, the second column)"
        ) from None


async def _keys_revoke(args: argparse.Namespace) -> int:
    async def revoke(keys: KeyRepository, pool: asyncpg.Pool) -> int:
        key_id = await _key_id(pool, args.key)
        before = await pool.fetchval("SELECT revoked_at FROM api_keys WHERE id = $1", key_id)
        key = await keys.revoke(key_id)
        if key is None:
            raise AdminError(f"no key has the id {key_id}")
        label = f"{key.id} (prefix {key.prefix}, tenant {key.tenant_id}, name {key.name or '-'})"
        if before is not None:
            print(f"key {label} was already revoked at {when(key.revoked_at)}")
        else:
            print(f"key {label} revoked at {when(key.revoked_at)}")
            print(
                "gateways refuse it within their key cache time"
                " (HOLDFAST_KEY_CACHE_SECONDS, 10 s unless set)"
            )
        return 0

    return await with_repository(args, revoke)


def add_key_commands(tree: AdminTree) -> None:
    keys = tree.group("keys", "the gateway's API keys (operators; straight to Postgres)")
    _add_create(tree, keys)

    p = tree.action(
        keys,
        "list",
        _keys_list,
        "a tenant's keys, newest first, never their secrets",
    )
    p.add_argument("--tenant", required=True)

    p = tree.action(
        keys,
        "revoke",
        _keys_revoke,
        "stop a key working",
        "Revokes a key for good; gateways refuse it within HOLDFAST_KEY_CACHE_SECONDS."
        " Revoking it again changes nothing.",
    )
    p.add_argument(
        "key",
        metavar="KEY_ID",
        help="its id (`holdfast keys list`'s first column), its prefix (the second) or the"
        " key itself",
    )


def _add_create(tree: AdminTree, keys: Any) -> None:
    scope_list = ", ".join(SCOPES)
    p = tree.action(
        keys,
        "create",
        _keys_create,
        "make an API key for a tenant; prints it once",
        "Makes an API key (hf_<prefix>_<secret>) for TENANT and prints it: the only time it"
        " is shown, as only its hash is stored. Clients send it as"
        f" `Authorization: Bearer <key>`. Scopes: {scope_list}.",
    )
    p.add_argument("--tenant", required=True)
    p.add_argument(
        "--scope",
        action="append",
        default=[],
        metavar="SCOPE",
        help="repeat or comma-separate; `all` for every scope; default: "
        + ", ".join(DEFAULT_SCOPES)
        + " (everything but inventory:admin)",
    )
    p.add_argument("--name", default="", help="what the key is for, e.g. 'web shop'")
    expires = p.add_mutually_exclusive_group()
    expires.add_argument(
        "--expires-in", type=float, metavar="DAYS", help="stop working after this many days"
    )
    expires.add_argument(
        "--expires-at", type=_instant, metavar="ISO", help="stop working then (UTC if no offset)"
    )
    p.add_argument(
        "--rate",
        type=_positive_int,
        metavar="PER_SECOND",
        help="this key's rate limit: requests per second, and bursts of up to as many at once;"
        " default: the gateway's"
        " HOLDFAST_RATE_LIMIT_PER_KEY",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="print only the key (for scripts)")
