"""Where the test run's Postgres and Redis are, and the key prefix that keeps this run's
keys apart from any other run (or a `make up`) on the same Redis."""

from __future__ import annotations

import os
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest

REDIS_PREFIX = f"hftest-{uuid.uuid4().hex[:10]}"


def _required(variable: str) -> str:
    url = os.environ.get(variable)
    if not url:
        pytest.exit(
            f"{variable} is not set: run the tests with `make test`"
            " or `python -m devtools testenv -- pytest`",
            returncode=2,
        )
    return url


def database_url() -> str:
    return _required("HOLDFAST_TEST_DATABASE_URL")


def redis_url() -> str:
    return _required("HOLDFAST_TEST_REDIS_URL")


def database_name(url: str) -> str:
    """The database a DSN names, whether it reaches the server over TCP or, as the
    embedded Postgres does, over a unix socket (`postgresql://u@/name?host=/dir`)."""
    return urlsplit(url).path.lstrip("/")


def with_database(url: str, name: str) -> str:
    """The same DSN naming another database."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))
