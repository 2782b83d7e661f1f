"""The JSON the API speaks, strict both ways: unknown fields are refused."""

from __future__ import annotations

import re
import uuid
import zoneinfo
from datetime import UTC, date, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
)


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range once in UTC (years 1 to 9999)") from None


def _a_string(value: object) -> object:
    """JSON's own types only: pydantic would read 0 as 1970-01-01."""
    if not isinstance(value, str | datetime):
        raise ValueError("must be a string")
    return value


def _a_number(value: object) -> object:
    """An integer as JSON Schema says (1 and 1.0), not `true` or "1"."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be an integer")
    return value


# A time given by the caller: with its offset, and representable in UTC
# (0001-01-01T00:00:00+01:00 is not), as the services take it.
Instant = Annotated[AwareDatetime, BeforeValidator(_a_string), AfterValidator(_in_utc)]
# A whole number in a JSON body.
Integer = Annotated[int, BeforeValidator(_a_number)]
INSTANT = (
    "An RFC 3339 date-time with its offset (`Z` or `+hh:mm`), e.g. 2031-06-01T09:00:00Z;"
    " within years 1 to 9999 once in UTC."
)

# The IANA names this machine's time zone database knows, as the booking
# service (the same image) checks them: the document lists them all.
_TIME_ZONES = sorted(zoneinfo.available_timezones())


def _known_zone(value: str) -> str:
    if value not in _TIME_ZONES:
        raise ValueError("must be an IANA time zone name, e.g. Europe/Lisbon")
    return value


TimeZone = Annotated[
    str,
    AfterValidator(_known_zone),
    WithJsonSchema(
        {
            "type": "string",
            "enum": _TIME_ZONES,
            "description": "An IANA time zone name; slots are stored in UTC",
            "examples": ["Europe/Lisbon"],
        }
    ),
]


# Text the services can store: no NUL character (Postgres text cannot hold it).
_STORABLE = r"^[^\x00]*$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Money(Strict):
    currency: str = Field(pattern=r"^[A-Z]{3}$", examples=["EUR"])
    amount_minor: Integer = Field(ge=0, le=10**12, description="In the currency's minor unit")


class Resource(Strict):
    id: uuid.UUID
    name: str
    time_zone: str
    price: Money
    default_capacity: int
    created_at: datetime
    kind: Literal["slotted", "windowed"] = Field(
        description="slotted: sold in slots with a capacity; windowed: units sold for windows"
    )


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


class BookableStart(Strict):
    start: datetime
    unit_id: uuid.UUID = Field(description="The unit a hold for this window would get now")


class FreeInterval(Strict):
    start: datetime
    end: datetime


class UnitAvailability(Strict):
    unit_id: uuid.UUID
    name: str
    size: int
    free: list[FreeInterval] = Field(
        description="The open hours of the dates asked that no live hold or booking (buffers"
        " included) touches, in order"
    )


class WindowAvailability(Strict):
    resource_id: uuid.UUID
    time_zone: str
    first_date: date
    last_date: date
    party_size: int
    duration_minutes: int
    starts: list[BookableStart] = Field(
        description="In order; each can be held now for the duration by the party"
    )
    units: list[UnitAvailability] = Field(
        description="The units that fit the party, best first (smallest, then by name)"
    )


# The longest span a protobuf Duration holds (10,000 years).
MAX_DURATION_SECONDS = 315_576_000_000


def _each_once(ids: list[uuid.UUID]) -> list[uuid.UUID]:
    if len(set(ids)) != len(ids):
        raise ValueError("lists the same slot twice")
    return ids


class WindowRequest(Strict):
    start_time: Instant = Field(description=INSTANT)
    end_time: Instant = Field(description=INSTANT)


# How many places or people one hold is for.
Count = Annotated[int, Field(ge=1, le=1000), BeforeValidator(_a_number)]


class HoldCreate(Strict):
    """Either shape, never both: on a slotted resource `slot_ids` (at least
    one) and `quantity`; on a windowed one `window` with `party_size`,
    `unit_id` or both. The booking service refuses a field of the other
    shape, or a missing one, naming it (422)."""

    resource_id: uuid.UUID
    slot_ids: Annotated[list[uuid.UUID], AfterValidator(_each_once)] = Field(
        default_factory=list, max_length=100, json_schema_extra={"uniqueItems": True}
    )
    # Bounds inside the Annotated, or the schema's integer branch loses them.
    quantity: Count | None = Field(None, description="Slotted resources: places on each slot")
    window: WindowRequest | None = Field(
        None, description="Windowed resources: the window [start_time, end_time) wanted"
    )
    party_size: Count | None = Field(
        None, description="Windowed resources: the best free unit seating it"
    )
    unit_id: uuid.UUID | None = Field(None, description="Windowed resources: this unit")
    customer_ref: str = Field(
        "", max_length=200, pattern=_STORABLE, description="Your reference; no personal data"
    )
    # Any positive whole number of seconds that fits a protobuf Duration: the
    # booking service alone says how long a hold may last, and its answer
    # names this field. (Bounds before the validator, or pydantic documents
    # them as `ge`/`le`.)
    ttl_seconds: (
        Annotated[int, Field(gt=0, le=MAX_DURATION_SECONDS), BeforeValidator(_a_number)] | None
    ) = Field(
        None,
        description=(
            "How long the places are held unpaid, in seconds; the booking service's"
            " settings (HOLDFAST_HOLD_TTL_*) set the default and the range it accepts"
        ),
    )


class HoldLine(Strict):
    slot_id: uuid.UUID
    start: datetime
    end: datetime
    unit_price: Money


HoldStatus = Literal["held", "confirmed", "cancelled", "refunded", "released", "expired"]


class HoldWindow(Strict):
    start_time: datetime
    end_time: datetime
    unit_id: uuid.UUID
    unit_name: str
    guarded_start_time: datetime = Field(description="The start less the buffer before")
    guarded_end_time: datetime = Field(description="The end plus the buffer after")


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
    window: HoldWindow | None = Field(
        None, description="On a windowed resource: the window held and its unit"
    )


class HoldList(Strict):
    items: list[Hold]
    next_cursor: str | None


# What Stripe takes as a success or cancel URL (holdfast.platform.stripe_limits
# .url_problem, which the booking service applies): an absolute http(s) URL
# with a host, no spaces or control characters. What a pattern cannot state
# is that it must parse: a port of at most 65535, a valid IPv6 address.
# The spaces are named one by one (what Python's str.isspace calls one): \s
# means other characters to ECMA-262, OpenAPI's dialect, than to Python or to
# the validator's Rust regex (U+0085, say).
_CTL = r"\x00-\x20\x7f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
CHECKOUT_URL = (
    rf"^https?://([^{_CTL}/?#@]*@)?"  # user info
    rf"(\[[0-9A-Fa-f:.]+\]|[^{_CTL}/?#@:\[\]]+)"  # the host
    r"(:[0-9]*)?"
    rf"([/?#][^{_CTL}]*)?$"
)


_CHECKOUT_URL = re.compile(CHECKOUT_URL)


def _checkout_url(value: str) -> str:
    if not _CHECKOUT_URL.fullmatch(value):
        raise ValueError(
            "must be an absolute http:// or https:// URL with a host, without spaces,"
            " e.g. https://shop.example/done"
        )
    return value


CheckoutUrl = Annotated[
    str,
    Field(max_length=2048),
    AfterValidator(_checkout_url),
    WithJsonSchema({"type": "string", "maxLength": 2048, "pattern": CHECKOUT_URL}),
]


class CheckoutCreate(Strict):
    success_url: CheckoutUrl | None = None
    cancel_url: CheckoutUrl | None = None


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
    reason: str = Field("", max_length=200, pattern=_STORABLE)
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
    # Not blank: at least one character other than white space.
    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00]*[^\s\x00][^\x00]*$")
    time_zone: TimeZone
    price: Money
    default_capacity: Integer = Field(ge=0, le=1_000_000)


class SlotCreate(Strict):
    start: Instant = Field(description=INSTANT)
    end: Instant = Field(description=f"After `start`. {INSTANT}")
    capacity: Annotated[int, Field(ge=0, le=1_000_000), BeforeValidator(_a_number)] | None = Field(
        None,
        description="Absent or null: the resource's default capacity; 0 is a slot of capacity 0",
    )


class SlotsCreate(Strict):
    # At most what fits in the gateway's body limit (64 KiB by default).
    slots: list[SlotCreate] = Field(
        min_length=1,
        max_length=400,
        description="All made or none; each `[start, end)` at most once, and not already a slot",
    )


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
    capacity: Integer = Field(ge=0, le=1_000_000)


class Problem(BaseModel):
    """RFC 9457 problem details, as every error is answered."""

    type: str
    title: str
    status: int
    detail: str
    reason: str = Field(description="Machine-readable, UPPER_SNAKE")
    correlation_id: str
    errors: list[dict[str, str]] = Field(default_factory=list)
