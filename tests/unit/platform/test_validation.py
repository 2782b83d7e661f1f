from datetime import UTC, datetime, timedelta, timezone

import pytest

from holdfast.platform.errors import DomainError, ErrorKind
from holdfast.platform.validation import Violations


def test_collects_every_violation_before_failing() -> None:
    v = Violations()
    v.uuid("resource_id", "not-a-uuid")
    v.uuid("slot_id", "")
    v.int_range("quantity", 0, 1, 10)
    v.currency("currency", "eur")

    with pytest.raises(DomainError) as raised:
        v.raise_if_any()

    error = raised.value
    assert error.kind is ErrorKind.INVALID_ARGUMENT
    assert [f.field for f in error.violations] == ["resource_id", "slot_id", "quantity", "currency"]


def test_time_range_is_normalised_to_utc_and_ordered() -> None:
    v = Violations()
    lisbon_summer = timezone(timedelta(hours=1))
    start = datetime(2031, 6, 1, 10, 0, tzinfo=lisbon_summer)

    window = v.time_range("time_range", start, start + timedelta(hours=1))
    backwards = v.time_range("other", start, start)

    assert window == (
        datetime(2031, 6, 1, 9, 0, tzinfo=UTC),
        datetime(2031, 6, 1, 10, 0, tzinfo=UTC),
    )
    assert backwards is None
    assert bool(v)


def test_optional_uuid_may_be_empty() -> None:
    v = Violations()
    assert v.uuid("resource_id", "", required=False) is None
    assert not v
