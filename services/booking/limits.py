"""What a request may ask of the booking service, read from its settings.

The one source of these rules: the gateway checks only that a value is of the
right kind, and passes the booking service's answer (an INVALID_ARGUMENT
naming the field) back to its caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from services.booking.config import BookingSettings


@dataclass(frozen=True)
class HoldTtl:
    """How long a hold keeps its places unpaid: the lifetime a hold gets when
    its request names none, and the range a request may name."""

    default: timedelta
    shortest: timedelta
    longest: timedelta

    @classmethod
    def from_settings(cls, settings: BookingSettings) -> HoldTtl:
        # The settings check that shortest <= default <= longest.
        return cls(
            default=timedelta(seconds=settings.hold_ttl_default_seconds),
            shortest=timedelta(seconds=settings.hold_ttl_min_seconds),
            longest=timedelta(seconds=settings.hold_ttl_max_seconds),
        )

    def problem(self, asked: timedelta) -> str | None:
        """Why a hold may not last `asked`, or None if it may."""
        if self.shortest <= asked <= self.longest:
            return None
        low, high = int(self.shortest.total_seconds()), int(self.longest.total_seconds())
        return f"must be between {low}s and {high}s"

    def lifetime(self, asked: timedelta | None) -> timedelta:
        """The lifetime of a hold whose request asked for `asked` (None: nothing)."""
        return self.default if asked is None else asked
