"""`holdfast tenants` and `holdfast keys`: operator commands for the gateway's
tenants and API keys.

They talk to Postgres directly (HOLDFAST_DATABASE_URL or --database-url), as
the gateway owns these tables and serves no API to manage them: whoever can
run these can read the database anyway. The keys are `holdfast.cli.keys`';
how both reach the database, `holdfast.cli.database`.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from holdfast.cli.database import AdminError, AdminTree, with_repository
from holdfast.cli.keys import add_key_commands
from holdfast.tenancy import is_tenant_id

if TYPE_CHECKING:
    import asyncpg

    from holdfast.tenancy.keys import KeyRepository


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

    return await with_repository(args, create)


def add_admin_commands(commands: Any) -> None:
    """Adds `tenants create` and `keys create|list|revoke` to the `holdfast` parser."""
    tree = AdminTree(commands)
    tenants = tree.group("tenants", "the gateway's tenants (operators; straight to Postgres)")
    p = tree.action(
        tenants,
        "create",
        _tenants_create,
        "add a tenant, which API keys can then be made for",
        "Adds a tenant. Its id is what the services scope every resource, hold and booking"
        " by: 1 to 63 of a-z, 0-9, '_' and '-'. Refuses an id that exists.",
    )
    p.add_argument("tenant", metavar="TENANT_ID")
    p.add_argument("--name", default="", help="a display name (default: the id)")
    add_key_commands(tree)
