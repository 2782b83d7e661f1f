from holdfast.platform import pagination
from holdfast.platform.validation import Violations


def test_token_round_trips_with_the_same_filters() -> None:
    cursor = pagination.Cursor("2031-06-01T09:00:00+00:00", "b7a3c1de-0000-4000-8000-000000000001")
    token = pagination.encode_token(cursor, ["CONFIRMED", "r1"])
    violations = Violations()

    assert pagination.decode_token(violations, token, ["CONFIRMED", "r1"]) == cursor
    assert not violations


def test_token_is_refused_with_other_filters_or_when_forged() -> None:
    token = pagination.encode_token(pagination.Cursor("2031-06-01T09:00:00+00:00", "x"), ["a"])
    other, forged = Violations(), Violations()

    assert pagination.decode_token(other, token, ["b"]) is None
    assert pagination.decode_token(forged, token[:-3] + "!!!", ["a"]) is None
    assert other
    assert forged


def test_page_size_defaults_and_caps() -> None:
    violations = Violations()
    assert pagination.page_size(violations, 0) == pagination.DEFAULT_PAGE_SIZE
    assert pagination.page_size(violations, 10_000) == pagination.MAX_PAGE_SIZE
    assert pagination.page_size(violations, 7) == 7
    assert not violations
    pagination.page_size(violations, -1)
    assert violations
