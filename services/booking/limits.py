"""What a request may ask of the booking service: sizes, ranges and the hold
TTL, most of them read from its settings.

Handlers check each request against these rules, naming the field each
problem is in. The booking service is their one source: the gateway has no
hold TTL range of its own and passes every INVALID_ARGUMENT on to its caller.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from holdfast.platform.stripe_limits import url_problem
from holdfast.platform.validation import Violations
from services.booking.config import BookingSettings
from services.booking.domain import RefundMode

# Names, references and reasons: kept in full in rows and the audit log.
MAX_TEXT = 200
# Checkout return URLs (Stripe takes at most this many characters).
MAX_URL = 2048
MAX_CAPACITY = 1_000_000
MAX_PRICE_MINOR = 10**12
# The longest window a window hold may ask for, whatever the resource's rules
# allow: the opening hours worked out for one request stay a year's at most.
MAX_WINDOW = timedelta(days=366)
# What a cancellation that names no refund mode does, until tenants set
# refund policies of their own.
DEFAULT_REFUND_MODE = RefundMode.FULL


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


@dataclass(frozen=True)
class BookingLimits:
    """The limits the settings choose: how much one request may ask for."""

    max_quantity: int
    max_slots_per_hold: int
    max_slots_per_request: int
    hold_ttl: HoldTtl

    @classmethod
    def from_settings(cls, settings: BookingSettings) -> BookingLimits:
        return cls(
            max_quantity=settings.max_quantity,
            max_slots_per_hold=settings.max_slots_per_hold,
            max_slots_per_request=settings.max_slots_per_request,
            hold_ttl=HoldTtl.from_settings(settings),
        )


def check_count(v: Violations, field: str, count: int, most: int, item: str) -> None:
    """A list names at least one `item` and at most `most`."""
    if count == 0:
        v.add(field, f"must list at least one {item}")
    elif count > most:
        v.add(field, f"must list at most {most} {item}s")


def check_each_once(v: Violations, field: str, values: Sequence[Hashable], item: str) -> None:
    """No `item` is listed twice in one request."""
    if len(set(values)) != len(values):
        v.add(field, f"lists the same {item} twice")


def check_return_url(v: Violations, field: str, url: str) -> None:
    """A checkout return URL, if given, is one Stripe takes."""
    if len(url) > MAX_URL:
        v.add(field, f"must be at most {MAX_URL} characters")
    elif url and (problem := url_problem(url)) is not None:
        v.add(field, problem)  # Stripe would refuse it: say so now
