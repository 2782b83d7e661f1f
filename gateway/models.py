"""The JSON the API speaks, strict both ways: unknown fields are refused."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range once in UTC (years 1 to 9999)") from None


# A time given by the caller: with its offset, and representable in UTC
# (0001-01-01T00:00:00+01:00 is not), as the services take it.
Instant = Annotated[AwareDatetime, AfterValidator(_in_utc)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Money(Strict):
    currency: str = Field(pattern=r"^[A-Z]{3}$", examples=["EUR"])
    amount_minor: int = Field(ge=0, le=10**12, description="In the currency's minor unit")


class Resource(Strict):
    id: uuid.UUID
    name: str
    time_zone: str
    price: Money
    default_capacity: int
    created_at: datetime


class ResourceList(Strict):
    items: list[Resource]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page")


class SlotAvailability(Strict):
    slot_id: uuid.UUID
    start: datetime
    end: datetime
    capacity: int
    available: int
    held: int
    booked: int
    open: bool


class Availability(Strict):
    resource_id: uuid.UUID
    start: datetime
    end: datetime
    slots: list[SlotAvailability]


class HoldCreate(Strict):
    resource_id: uuid.UUID
    slot_ids: list[uuid.UUID] = Field(min_length=1, max_length=100)
    quantity: int = Field(ge=1, le=1000)
    customer_ref: str = Field("", max_length=200, description="Your reference; no personal data")
    ttl_seconds: int | None = Field(None, ge=1, le=86_400, description="Default: 10 minutes")


class HoldLine(Strict):
    slot_id: uuid.UUID
    start: datetime
    end: datetime
    unit_price: Money


HoldStatus = Literal["held", "confirmed", "cancelled", "refunded", "released", "expired"]


class Hold(Strict):
    id: uuid.UUID
    resource_id: uuid.UUID
    status: HoldStatus
    quantity: int
    customer_ref: str
    lines: list[HoldLine]
    total: Money
    expires_at: datetime
    created_at: datetime
    updated_at: datetime
    payment_ref: str
    status_reason: str


class HoldList(Strict):
    items: list[Hold]
    next_cursor: str | None


class CheckoutCreate(Strict):
    success_url: str | None = Field(None, max_length=2048, pattern=r"^https?://")
    cancel_url: str | None = Field(None, max_length=2048, pattern=r"^https?://")


class Checkout(Strict):
    hold_id: uuid.UUID
    attempt: int
    session_id: str
    url: str
    status: Literal["creating", "open", "complete", "expired", "failed"]
    expires_at: datetime
    amount: Money
    failure_reason: str = Field(
        "", description="Why a failed attempt failed: Stripe's refusal, or the payment's decline"
    )


class Cancel(Strict):
    reason: str = Field("", max_length=200)
    refund: Literal["full", "none"] = Field(
        "full",
        description="full: refund the booking's payment in full at Stripe (the default);"
        " none: keep it (recorded as the caller's choice)",
    )


class Refund(Strict):
    payment_ref: str
    refund_id: str = Field(description="Stripe's refund id, once Stripe made it")
    amount: Money
    status: Literal["pending", "succeeded", "failed"] = Field(
        description="pending: recorded, Stripe not yet answered (retried by itself);"
        " failed: Stripe refused it, see failure_reason"
    )
    failure_reason: str


class CancelledBooking(Hold):
    refund: Refund | None = Field(description="The refund of the booking's payment, if one is made")


class ResourceCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    time_zone: str = Field(min_length=1, max_length=64, examples=["Europe/Lisbon"])
    price: Money
    default_capacity: int = Field(ge=0, le=1_000_000)


class SlotCreate(Strict):
    start: Instant
    end: Instant
    capacity: int | None = Field(None, ge=0, le=1_000_000, description="Default: the resource's")


class SlotsCreate(Strict):
    slots: list[SlotCreate] = Field(min_length=1, max_length=1000)


class Slot(Strict):
    id: uuid.UUID
    resource_id: uuid.UUID
    start: datetime
    end: datetime
    capacity: int
    held: int
    booked: int
    closed: bool


class SlotList(Strict):
    items: list[Slot]


class CapacityUpdate(Strict):
    capacity: int = Field(ge=0, le=1_000_000)


class Problem(BaseModel):
    """RFC 9457 problem details, as every error is answered."""

    type: str
    title: str
    status: int
    detail: str
    reason: str = Field(description="Machine-readable, UPPER_SNAKE")
    correlation_id: str
    errors: list[dict[str, str]] = Field(default_factory=list)
