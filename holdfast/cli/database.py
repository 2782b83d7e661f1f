"""How the operator commands (`holdfast tenants`, `holdfast keys`) reach
Postgres and say what went wrong: one line the operator can act on, exit
status 1, no traceback."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncpg

    from holdfast.tenancy.keys import KeyRepository

DATABASE_URL_ENV = "HOLDFAST_DATABASE_URL"
CONNECT_TIMEOUT = 10.0

AdminCommand = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]


class AdminError(Exception):
    """Something the operator can act on: printed as one line, exit status 1."""


def when(moment: datetime | None, never: str = "never") -> str:
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


async def with_repository(
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


async def require_tenant(keys: KeyRepository, tenant: str) -> None:
    if not await keys.tenant_exists(tenant):
        raise AdminError(f"no tenant {tenant!r}; create it first: holdfast tenants create {tenant}")


def runner(command: AdminCommand) -> Callable[..., int]:
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


class AdminTree:
    """The `holdfast` parser seen by the operator groups: each action takes
    --database-url and runs its coroutine through `runner`."""

    def __init__(self, commands: Any) -> None:
        self.commands = commands
        self.database = argparse.ArgumentParser(add_help=False)
        self.database.add_argument(
            "--database-url",
            help=f"the gateway's Postgres (default: {DATABASE_URL_ENV}; `make up` writes it to"
            " .state/up.env)",
        )

    def group(self, name: str, help_text: str) -> Any:
        parser = self.commands.add_parser(name, help=help_text, description=help_text)
        parser.set_defaults(group=name)
        return parser.add_subparsers(dest="action", required=True)

    def action(
        self,
        parent: Any,
        name: str,
        run: AdminCommand,
        help_text: str,
        description: str | None = None,
    ) -> Any:
        parser = parent.add_parser(
            name, parents=[self.database], help=help_text, description=description or help_text
        )
        parser.set_defaults(run=runner(run))
        return parser
