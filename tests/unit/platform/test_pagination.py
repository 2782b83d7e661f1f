from datetime import UTC, datetime

import pytest

from holdfast.platform import pagination
from holdfast.platform.errors import DomainError
from holdfast.platform.validation import Violations

SECRET = b"s" * 32
CURSOR = pagination.Cursor(
    datetime(2031, 6, 1, 9, 0, 0, 123456, tzinfo=UTC), "b7a3c1de-0000-4000-8000-000000000001"
)


def refusal(tokens: pagination.PageTokens, token: str, listing: str, filters: object) -> str:
    violations = Violations()
    assert tokens.decode(violations, token, listing, filters) is None
    with pytest.raises(DomainError) as raised:
        violations.raise_if_any()
    [violation] = raised.value.violations
    assert violation.field == "page_token"
    return str(violation.description)


def test_token_round_trips_with_the_same_list_and_filters() -> None:
    tokens = pagination.PageTokens(SECRET)
    token = tokens.encode(CURSOR, "ListBookings", ["t1", ["CONFIRMED"]])
    violations = Violations()

    assert tokens.decode(violations, token, "ListBookings", ["t1", ["CONFIRMED"]]) == CURSOR
    assert not violations


def test_token_is_refused_for_another_list_or_filters() -> None:
    tokens = pagination.PageTokens(SECRET)
    token = tokens.encode(CURSOR, "ListBookings", ["t1"])

    assert refusal(tokens, token, "ListBookings", ["t2"]) == (
        "belongs to another list, tenant or other filters"
    )
    assert refusal(tokens, token, "ListResources", ["t1"]) == (
        "belongs to another list, tenant or other filters"
    )


def test_token_signed_with_another_secret_or_garbled_is_refused() -> None:
    ours, theirs = pagination.PageTokens(SECRET), pagination.PageTokens(b"t" * 32)
    token = theirs.encode(CURSOR, "ListBookings", [])

    for garbled in (token, token[:-3] + "!!!", token[:10], "", "A" * 5000, "é"):
        if garbled:
            assert refusal(ours, garbled, "ListBookings", []) == (
                "is not a token this service issued"
            )


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        pagination.PageTokens(b"short")


def test_page_size_defaults_and_caps() -> None:
    violations = Violations()
    assert pagination.page_size(violations, 0) == pagination.DEFAULT_PAGE_SIZE
    assert pagination.page_size(violations, 10_000) == pagination.MAX_PAGE_SIZE
    assert pagination.page_size(violations, 7) == 7
    assert not violations
    pagination.page_size(violations, -1)
    assert violations
