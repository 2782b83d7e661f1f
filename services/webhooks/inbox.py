"""The Stripe event inbox's types: what the receiver stores, what a processor
worker claims, how an attempt ends, and what operators list and replay.
The repository (services.webhooks.repository) reads and writes them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# An event in one of these states is never applied again unless replayed:
# its payload keeps only the allow-listed fields (services.webhooks.redaction).
FINAL_STATUSES = ("APPLIED", "IGNORED", "DEAD")
# States whose event is still to be applied, when it is due.
WAITING_STATUSES = ("PENDING", "FAILED")


@dataclass(frozen=True)
class NewEvent:
    """A verified event as received, to store."""

    event_id: str
    type: str
    object_id: str
    created_at: datetime
    livemode: bool
    payload: str
    correlation_id: str


@dataclass(frozen=True)
class ClaimedEvent:
    """An event a worker is applying: the `attempt`th try at it."""

    event_id: str
    type: str
    object_id: str
    payload: str  # the body as received (an event is redacted once final)
    correlation_id: str
    attempt: int


@dataclass(frozen=True)
class Outcome:
    """How one attempt at an event ended."""

    status: str  # APPLIED, IGNORED, FAILED or DEAD
    outcome: str = ""
    error: str | None = None


@dataclass(frozen=True)
class StoredEvent:
    """An event in the inbox as operators see it."""

    event_id: str
    type: str
    object_id: str
    created_at: datetime  # Stripe's `created`
    status: str  # PENDING, FAILED, APPLIED, IGNORED or DEAD
    outcome: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    received_at: datetime
    processed_at: datetime | None
    correlation_id: str
    payload: str | None  # None when listed: a listing does not read it
