"""`holdfast tenants` and `holdfast keys`: operator commands for the gateway's
tenants and API keys.

They talk to Postgres directly (HOLDFAST_DATABASE_URL or --database-url), as
the gateway owns these tables and serves no API to manage them: whoever can
run these can read the database anyway. A key's secret exists only in the
output of `keys create`; the database keeps its SHA-256, so `keys list` shows
everything but the secret.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from holdfast.tenancy import DEFAULT_SCOPES, KEY_PREFIX, SCOPES, is_tenant_id

if TYPE_CHECKING:
    import asyncpg

    from holdfast.tenancy.keys import ApiKey, KeyRepository

DATABASE_URL_ENV = "HOLDFAST_DATABASE_URL"
CONNECT_TIMEOUT = 10.0


class AdminError(Exception):
    """Something the operator can act on: printed as one line, exit status 1."""


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
        raise AdminError(f"--expires-at {_when(expires_at)} is not in the future")
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


def _when(moment: datetime | None, never: str = "never") -> str:
    if moment is None:
        return never
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _database_url(args: argparse.Namespace) -> str:
    url: str | None = args.database_url or os.environ.get(DATABASE_URL_ENV)
    if not url:
        raise AdminError(
            f"set {DATABASE_URL_ENV} or pass --database-url (with `make up` running:"
            " source .state/up.env)"
        )
    return url


async def _with_repository(
    args: argparse.Namespace, work: Callable[[KeyRepository, asyncpg.Pool], Awaitable[int]]
) -> int:
    import asyncpg

    from holdfast.tenancy.keys import KeyRepository

    try:
        pool = await asyncpg.create_pool(
            _database_url(args), min_size=1, max_size=1, timeout=CONNECT_TIMEOUT
        )
    except (
        OSError,
        ValueError,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        TimeoutError,
    ) as error:
        raise AdminError(f"cannot reach the database: {error}") from None
    assert pool is not None
    try:
        return await work(KeyRepository(pool), pool)
    except asyncpg.UndefinedTableError:
        raise AdminError(
            "the database has no tenants/api_keys tables yet: run `holdfast migrate`"
            " (or `make up`, which migrates)"
        ) from None
    finally:
        await pool.close()


def _unavailable_message(error: Exception) -> str | None:
    """What holdfast.platform.db.database_unavailable raised, as a line."""
    from holdfast.platform.errors import DomainError

    if isinstance(error, DomainError):
        return f"the database is unavailable ({error.reason})"
    return None


async def _require_tenant(keys: KeyRepository, tenant: str) -> None:
    if not await keys.tenant_exists(tenant):
        raise AdminError(f"no tenant {tenant!r}; create it first: holdfast tenants create {tenant}")


# --- tenants ------------------------------------------------------------------


async def _tenants_create(args: argparse.Namespace) -> int:
    tenant: str = args.tenant
    if not is_tenant_id(tenant):
        raise AdminError(
            f"{tenant!r} is not a tenant id: 1 to 63 characters of a-z, 0-9, '_' and '-',"
            " starting with a letter or digit"
        )
    name: str = args.name or tenant
    if not 1 <= len(name) <= 200:
        raise AdminError("--name must be 1 to 200 characters")

    async def create(keys: KeyRepository, pool: asyncpg.Pool) -> int:
        if not await keys.create_tenant(tenant, name):
            existing = await pool.fetchval("SELECT name FROM tenants WHERE id = $1", tenant)
            raise AdminError(f"tenant {tenant!r} already exists (named {existing!r})")
        print(f"tenant {tenant} created ({name})")
        print(f"next: holdfast keys create --tenant {tenant}")
        return 0

    return await _with_repository(args, create)


# --- keys ---------------------------------------------------------------------


def _show_new_key(key: ApiKey, token: str, default_rate: str) -> None:
    print(f"key       {token}")
    print(f"id        {key.id}")
    print(f"tenant    {key.tenant_id}")
    print(f"prefix    {key.prefix}")
    print(f"name      {key.name or '-'}")
    print(f"scopes    {' '.join(key.scopes)}")
    print(f"expires   {_when(key.expires_at)}")
    rate = f"{key.rate_per_second}/s" if key.rate_per_second else default_rate
    print(f"rate      {rate}")


async def _keys_create(args: argparse.Namespace) -> int:
    scopes = parse_scopes(args.scope)
    expires_at = expiry(args.expires_in, args.expires_at, datetime.now(UTC))

    async def create(keys: KeyRepository, pool: asyncpg.Pool) -> int:
        await _require_tenant(keys, args.tenant)
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

    return await _with_repository(args, create)


async def _keys_list(args: argparse.Namespace) -> int:
    async def show(keys: KeyRepository, pool: asyncpg.Pool) -> int:
        await _require_tenant(keys, args.tenant)
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
                    _when(key.created_at),
                    _when(key.expires_at),
                    _when(key.revoked_at, never="-"),
                    f"{key.rate_per_second}/s" if key.rate_per_second else "default",
                    ",".join(key.scopes),
                ]
            )
        _print_table(rows)
        return 0

    return await _with_repository(args, show)


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
            print(f"key {label} was already revoked at {_when(key.revoked_at)}")
        else:
            print(f"key {label} revoked at {_when(key.revoked_at)}")
            print(
                "gateways refuse it within their key cache time"
                " (HOLDFAST_KEY_CACHE_SECONDS, 10 s unless set)"
            )
        return 0

    return await _with_repository(args, revoke)


def _runner(
    command: Callable[[argparse.Namespace], Coroutine[Any, Any, int]],
) -> Callable[..., int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return asyncio.run(command(args))
        except AdminError as error:
            print(f"holdfast {args.group} {args.action}: {error}", file=sys.stderr)
            return 1
        except Exception as error:
            message = _unavailable_message(error)
            if message is None:
                raise
            print(f"holdfast {args.group} {args.action}: {message}", file=sys.stderr)
            return 1

    return run


def add_admin_commands(commands: Any) -> None:
    """Adds `tenants create` and `keys create|list|revoke` to the `holdfast` parser."""
    database = argparse.ArgumentParser(add_help=False)
    database.add_argument(
        "--database-url",
        help=f"the gateway's Postgres (default: {DATABASE_URL_ENV}; `make up` writes it to"
        " .state/up.env)",
    )

    def group(name: str, help_text: str) -> Any:
        parser = commands.add_parser(name, help=help_text, description=help_text)
        parser.set_defaults(group=name)
        return parser.add_subparsers(dest="action", required=True)

    def action(
        parent: Any,
        name: str,
        run: Callable[[argparse.Namespace], Coroutine[Any, Any, int]],
        help_text: str,
        description: str | None = None,
    ) -> Any:
        parser = parent.add_parser(
            name, parents=[database], help=help_text, description=description or help_text
        )
        parser.set_defaults(run=_runner(run))
        return parser

    tenants = group("tenants", "the gateway's tenants (operators; straight to Postgres)")
    p = action(
        tenants,
        "create",
        _tenants_create,
        "add a tenant, which API keys can then be made for",
        "Adds a tenant. Its id is what the services scope every resource, hold and booking"
        " by: 1 to 63 of a-z, 0-9, '_' and '-'. Refuses an id that exists.",
    )
    p.add_argument("tenant", metavar="TENANT_ID")
    p.add_argument("--name", default="", help="a display name (default: the id)")

    scope_list = ", ".join(SCOPES)
    keys = group("keys", "the gateway's API keys (operators; straight to Postgres)")
    p = action(
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

    p = action(
        keys,
        "list",
        _keys_list,
        "a tenant's keys, newest first, never their secrets",
    )
    p.add_argument("--tenant", required=True)

    p = action(
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
