"""Collects every field violation of a request before failing, so one answer
tells the caller all that is wrong, not just the first thing."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

from holdfast.platform.errors import FieldViolation, invalid_argument

_CURRENCY = re.compile(r"^[A-Z]{3}$")


class Violations:
    def __init__(self) -> None:
        self._found: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self._found.append(FieldViolation(field, description))

    def __bool__(self) -> bool:
        return bool(self._found)

    def raise_if_any(self) -> None:
        if self._found:
            raise invalid_argument(self._found)

    def uuid(self, field: str, value: str, *, required: bool = True) -> uuid.UUID | None:
        if not value:
            if required:
                self.add(field, "is required")
            return None
        try:
            return uuid.UUID(value)
        except ValueError:
            self.add(field, "must be a UUID")
            return None

    def text(self, field: str, value: str, *, max_length: int, required: bool = True) -> str:
        if required and not value.strip():
            self.add(field, "is required")
        elif len(value) > max_length:
            self.add(field, f"must be at most {max_length} characters")
        elif "\x00" in value:  # Postgres text cannot hold it
            self.add(field, "must not contain NUL characters")
        return value

    def int_range(self, field: str, value: int, low: int, high: int) -> int:
        if not low <= value <= high:
            self.add(field, f"must be between {low} and {high}")
        return value

    def currency(self, field: str, value: str) -> str:
        if not _CURRENCY.match(value):
            self.add(field, "must be an ISO 4217 code in upper case, e.g. EUR")
        return value

    def time_range(
        self, field: str, start: datetime | None, end: datetime | None
    ) -> tuple[datetime, datetime] | None:
        if start is None or end is None:
            self.add(field, "needs both start_time and end_time")
            return None
        if end <= start:
            self.add(field, "end_time must be after start_time")
            return None
        return start.astimezone(UTC), end.astimezone(UTC)


def parse_id(field: str, value: str) -> uuid.UUID:
    """The UUID a request names in its only field, or INVALID_ARGUMENT at once."""
    violations = Violations()
    parsed = violations.uuid(field, value)
    violations.raise_if_any()
    assert parsed is not None
    return parsed
