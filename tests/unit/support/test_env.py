"""The test run's DSN helpers read both kinds of DSN the suite meets: TCP (the
machine's Postgres) and a unix socket (the embedded one `make test` starts)."""

from __future__ import annotations

import pytest

from tests.support.env import database_name, with_database

TCP = "postgresql://postgres@127.0.0.1:5432/test"
SOCKET = "postgresql://postgres:@/holdfast_test?host=/work/main/.state/test-postgres"


@pytest.mark.parametrize(("url", "name"), [(TCP, "test"), (SOCKET, "holdfast_test")])
def test_the_database_name_is_the_path_not_the_socket_folder(url: str, name: str) -> None:
    assert database_name(url) == name


def test_another_database_keeps_the_socket_folder() -> None:
    other = with_database(SOCKET, "holdfast_test_abc")
    assert database_name(other) == "holdfast_test_abc"
    assert other.endswith("?host=/work/main/.state/test-postgres")
    assert with_database(TCP, "x") == "postgresql://postgres@127.0.0.1:5432/x"
