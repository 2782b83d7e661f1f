"""The `holdfast` command line, for operators: migrations, tenants and API
keys, the webhook inbox, and a client for the services. (The local stack is
development's: `python -m devtools up | testenv`.)"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from holdfast.cli.admin import add_admin_commands
from holdfast.cli.client import add_client_commands


def _migrate(args: argparse.Namespace) -> int:
    from holdfast.migrate import migrate

    dsn = args.database_url or os.environ.get("HOLDFAST_DATABASE_URL")
    if not dsn:
        print("holdfast migrate: set HOLDFAST_DATABASE_URL or pass --database-url", file=sys.stderr)
        return 2
    applied = asyncio.run(migrate(dsn))
    print("applied: " + ", ".join(applied) if applied else "schema is up to date")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="holdfast", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    migrate = commands.add_parser("migrate", help="apply database migrations")
    migrate.add_argument("--database-url", help="defaults to HOLDFAST_DATABASE_URL")
    migrate.set_defaults(run=_migrate)
    add_client_commands(commands)
    add_admin_commands(commands)
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except BrokenPipeError:
        # `holdfast ... | head` stopped reading: not an error worth a traceback.
        # Point stdout at /dev/null so flushing it at exit fails no more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
