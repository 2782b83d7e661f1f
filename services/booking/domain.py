"""The booking domain's vocabulary: what a resource, slot and hold are."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from holdfast.scheduling.hours import OpeningHours
from holdfast.scheduling.intervals import Interval
from holdfast.scheduling.rules import WindowRules


class HoldStatus(enum.StrEnum):
    HELD = "HELD"
    CONFIRMED = "CONFIRMED"
    CANCELLED = "CANCELLED"
    REFUNDED = "REFUNDED"
    RELEASED = "RELEASED"
    EXPIRED = "EXPIRED"


@dataclass(frozen=True)
class Resource:
    id: uuid.UUID
    name: str
    time_zone: str
    price_minor: int
    currency: str
    default_capacity: int
    created_at: datetime
    kind: ResourceKind


@dataclass(frozen=True)
class Slot:
    id: uuid.UUID
    resource_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    capacity: int
    held: int
    booked: int
    closed: bool
    version: int

    @property
    def free(self) -> int:
        """Units a new hold could take, ignoring whether the slot is closed."""
        return self.capacity - self.held - self.booked

    @property
    def available(self) -> int:
        return 0 if self.closed else self.free


@dataclass(frozen=True)
class HoldLine:
    slot_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    unit_minor: int


def in_time_order(lines: Iterable[HoldLine]) -> tuple[HoldLine, ...]:
    """A hold's lines as every reader sees them: by start time, then slot id."""
    return tuple(sorted(lines, key=lambda line: (line.starts_at, line.slot_id)))


@dataclass(frozen=True)
class HoldWindow:
    """A windowed hold's window and the unit it is on: `guarded` is the window
    widened by the resource's buffers at hold time (whole seconds, rounded
    outwards), what no other live window on the unit may overlap."""

    window: Interval
    unit_id: uuid.UUID
    unit_name: str
    guarded: Interval


@dataclass(frozen=True)
class Hold:
    id: uuid.UUID
    resource_id: uuid.UUID
    status: HoldStatus
    quantity: int
    customer_ref: str
    currency: str
    total_minor: int
    expires_at: datetime
    payment_ref: str
    status_reason: str
    created_at: datetime
    updated_at: datetime
    lines: tuple[HoldLine, ...]
    # Where a hold on a windowed resource sits (None for a slotted one).
    window: HoldWindow | None = None

    @property
    def slot_ids(self) -> list[uuid.UUID]:
        return [line.slot_id for line in self.lines]


@dataclass(frozen=True)
class NewResource:
    name: str
    time_zone: str
    price_minor: int
    currency: str
    default_capacity: int


@dataclass(frozen=True)
class NewSlot:
    starts_at: datetime
    ends_at: datetime
    # None means the resource's default capacity.
    capacity: int | None


@dataclass(frozen=True)
class HoldRequest:
    resource_id: uuid.UUID
    slot_ids: tuple[uuid.UUID, ...]
    quantity: int
    customer_ref: str
    ttl: timedelta


@dataclass(frozen=True)
class WindowHoldRequest:
    """A hold on a windowed resource: the window wanted, for a party (the
    best free unit that seats it), a named unit, or both."""

    resource_id: uuid.UUID
    window: Interval
    party_size: int | None
    unit_id: uuid.UUID | None
    customer_ref: str
    ttl: timedelta


@dataclass(frozen=True)
class RequestKey:
    """An AIP-155 request id with what identifies the request it was first used for."""

    request_id: str
    method: str
    request_hash: bytes


@dataclass(frozen=True)
class HoldFilter:
    statuses: tuple[HoldStatus, ...] = ()
    resource_id: uuid.UUID | None = None


class CheckoutStatus(enum.StrEnum):
    CREATING = "CREATING"
    OPEN = "OPEN"
    COMPLETE = "COMPLETE"
    EXPIRED = "EXPIRED"
    # Ended without a payment for good: Stripe refused the session, or the
    # payment was declined. The reason is kept on the attempt.
    FAILED = "FAILED"


@dataclass(frozen=True)
class Checkout:
    """One payment attempt for a hold: a Stripe Checkout Session.

    Everything Stripe is sent is fixed when the attempt starts, so that a
    retried create is the same request under the same idempotency key.
    """

    hold_id: uuid.UUID
    attempt: int
    tenant_id: str
    status: CheckoutStatus
    amount_minor: int
    currency: str
    expires_at: datetime
    success_url: str
    cancel_url: str
    traceparent: str | None = None
    correlation_id: str = ""
    session_id: str | None = None
    url: str | None = None
    failure_reason: str = ""

    @property
    def idempotency_key(self) -> str:
        return f"checkout:{self.hold_id}:{self.attempt}"

    @property
    def unresolved(self) -> bool:
        return self.status in (CheckoutStatus.CREATING, CheckoutStatus.OPEN)


class RefundStatus(enum.StrEnum):
    # Decided and recorded; Stripe not yet (known to have been) asked.
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    # Stripe refused it; an operator must act.
    FAILED = "FAILED"


class RefundCause(enum.StrEnum):
    # The payment could not become the booking (capacity gone, hold closed).
    LATE_PAYMENT = "LATE_PAYMENT"
    # The booking it paid was cancelled.
    CANCELLATION = "CANCELLATION"
    # Refunded at Stripe by someone else (an operator, Stripe's dashboard).
    AT_STRIPE = "AT_STRIPE"


class RefundMode(enum.StrEnum):
    """What a cancellation does with the booking's payment."""

    FULL = "full"
    NONE = "none"


@dataclass(frozen=True)
class Refund:
    """The refund of one payment. There is at most one per payment, and once
    one exists (in any status) the payment can never confirm a hold."""

    payment_ref: str
    tenant_id: str
    hold_id: uuid.UUID
    cause: RefundCause
    status: RefundStatus
    amount_minor: int
    currency: str
    refund_id: str | None = None
    failure_reason: str = ""

    @property
    def idempotency_key(self) -> str:
        return f"refund:{self.payment_ref}"


@dataclass(frozen=True)
class FirstRequest:
    """What a request id was first used for, and the response it got (None
    only while that first request has not committed)."""

    method: str
    request_hash: bytes
    response: bytes | None


@dataclass(frozen=True)
class SlotPreview:
    """A slot as seen, without locks, before a reservation is attempted: its
    price, and whether a lapsed hold on it could be reclaimed."""

    slot: Slot
    unit_minor: int
    currency: str
    has_expired_holds: bool


@dataclass(frozen=True)
class DueCheckout:
    """An unresolved attempt for the reconciler, with its hold's state."""

    checkout: Checkout
    hold_status: HoldStatus
    hold_expires_at: datetime


@dataclass(frozen=True)
class OutboxRow:
    """A row of the transactional outbox, as the relay or the payment actions
    claimed it: a message for the streams, or an action at Stripe."""

    id: int
    topic: str
    message_key: str
    tenant_id: str
    # The JSON text of the payload.
    payload: str
    dedupe_key: str
    traceparent: str | None
    correlation_id: str
    created_at: datetime
    attempts: int


class ResourceKind(enum.StrEnum):
    """How a resource is sold: pre-cut slots with a capacity, or units for any window."""

    SLOTTED = "SLOTTED"
    WINDOWED = "WINDOWED"


@dataclass(frozen=True)
class ResourceUnit:
    """A table, room or bike of a windowed resource: `size` is its seats, beds, or 1."""

    id: uuid.UUID
    resource_id: uuid.UUID
    name: str
    size: int
    active: bool
    created_at: datetime


@dataclass(frozen=True)
class WindowTerms:
    """How a windowed resource sells its windows: its `rules`, and what its
    price is for: each `price_period` of a window, every started one counting
    whole (an hour, a night), or, when zero, the booking as a whole."""

    rules: WindowRules
    price_period: timedelta = timedelta(0)


@dataclass(frozen=True)
class UnitWindow:
    """A hold's window on a unit: `window` is what was sold, `guarded` the
    buffered window no other live one on the unit may overlap (whole seconds,
    rounded outwards)."""

    hold_id: uuid.UUID
    unit_id: uuid.UUID
    resource_id: uuid.UUID
    window: Interval
    guarded: Interval
    live: bool


@dataclass(frozen=True)
class WindowSetup:
    """What a window hold reads of its resource before it is attempted, in
    one round trip: its kind, zone and price, and (windowed only) its rules,
    the period its price is for (zero: the booking as a whole), its hours,
    its units (best first, retired ones too) and, per unit name, the guarded
    windows of live holds near the window asked for (those of lapsed unswept
    holds left out: the transaction reclaims them); `now` is the database's."""

    kind: ResourceKind
    time_zone: str
    price_minor: int
    currency: str
    rules: WindowRules | None
    price_period: timedelta
    now: datetime
    hours: OpeningHours | None = None
    units: tuple[ResourceUnit, ...] = ()
    busy: Mapping[str, Sequence[Interval]] = field(default_factory=dict)
