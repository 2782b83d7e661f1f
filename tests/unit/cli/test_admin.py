"""`holdfast tenants` / `holdfast keys`: what they accept, before any database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from holdfast.cli import database as admin_database
from holdfast.cli import main
from holdfast.cli.database import AdminError
from holdfast.cli.keys import expiry, parse_scopes
from holdfast.tenancy import DEFAULT_SCOPES, KEY_PREFIX, SCOPES

NOW = datetime(2030, 5, 1, 12, tzinfo=UTC)


def test_a_key_gets_every_scope_but_inventory_admin_unless_it_asks() -> None:
    assert set(DEFAULT_SCOPES) == set(SCOPES) - {"inventory:admin"}


def test_scopes_repeat_or_comma_separate_and_come_out_in_the_gateways_order() -> None:
    assert parse_scopes(["holds:write,availability:read", "holds:write"]) == (
        "availability:read",
        "holds:write",
    )
    assert parse_scopes([" bookings:read "]) == ("bookings:read",)


def test_no_scope_means_everything_but_inventory_admin_and_all_means_all() -> None:
    assert parse_scopes([]) == DEFAULT_SCOPES
    assert parse_scopes(["all"]) == SCOPES


def test_unknown_scopes_are_named_with_the_valid_ones() -> None:
    with pytest.raises(AdminError) as refused:
        parse_scopes(["holds:write,holds:read", "admin"])

    message = str(refused.value)
    assert "'admin', 'holds:read'" in message
    assert all(scope in message for scope in SCOPES)


def test_expiry_from_days_or_a_time_and_never_in_the_past() -> None:
    assert expiry(None, None, NOW) is None
    assert expiry(1.5, None, NOW) == NOW + timedelta(days=1, hours=12)
    later = NOW + timedelta(days=3)
    assert expiry(None, later, NOW) == later
    with pytest.raises(AdminError, match="not in the future"):
        expiry(None, NOW - timedelta(seconds=1), NOW)
    with pytest.raises(AdminError, match="positive"):
        expiry(0, None, NOW)


def test_a_key_is_named_by_its_prefix_or_the_whole_key() -> None:
    for text in ("a80b7ca140b3", "hf_a80b7ca140b3", "hf_a80b7ca140b3_DhpPaC7l27nTf4sq7u-A_w6"):
        found = KEY_PREFIX.match(text)
        assert found, text
        assert found.group(1) == "a80b7ca140b3"
    assert not KEY_PREFIX.match("814bf0c5-42a9-406c-a283-166e454a15cd")


def test_expires_in_and_expires_at_exclude_each_other(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["keys", "create", "--tenant", "t", "--expires-in", "3", "--expires-at", "2031-01-01"])

    assert exited.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_bad_input_is_refused_before_the_database_is_asked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # No database at all: each refusal must come first.
    monkeypatch.setenv("HOLDFAST_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")

    assert main(["keys", "create", "--tenant", "t", "--scope", "holds:wrte"]) == 1
    assert "unknown scope 'holds:wrte'" in capsys.readouterr().err
    assert main(["tenants", "create", "Not An Id"]) == 1
    assert "is not a tenant id" in capsys.readouterr().err
    assert main(["keys", "create", "--tenant", "t", "--expires-at", "2001-01-01"]) == 1
    assert "not in the future" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["keys", "create", "--tenant", "t", "--rate", "0"])
    assert "not a positive number" in capsys.readouterr().err


def test_without_a_database_url_it_says_where_to_find_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(admin_database.DATABASE_URL_ENV, raising=False)

    assert main(["keys", "list", "--tenant", "t"]) == 1
    assert "HOLDFAST_DATABASE_URL" in capsys.readouterr().err
