"""Everything the fake remembers: objects, idempotent results, requests seen.

In memory only: a fake lives as long as its test or its `make up`. Objects are
kept as the Stripe-shaped dicts the API returns; what Stripe knows about an
object but does not show (a session's `payment_intent_data`, the base URL its
customer pays at) sits beside it in `SessionState`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from devtools.fakestripe.errors import no_such
from devtools.fakestripe.objects import JsonObject


@dataclass
class SessionState:
    """What a checkout session carries beyond its public fields."""

    # Stripe copies `payment_intent_data` (metadata, description...) onto the
    # PaymentIntent it creates when the customer pays, not the session's own.
    payment_intent_data: JsonObject
    # Where the customer pays (the fake's hosted page) and receipts live.
    base_url: str


@dataclass(frozen=True)
class IdempotencyRecord:
    """The first answer to a POST with an idempotency key, replayed byte for byte."""

    method: str
    path: str
    params: dict[str, Any]
    status: int
    body: bytes
    request_id: str


@dataclass(frozen=True)
class RecordedRequest:
    """One API request as the fake saw it, for tests to assert on
    ("exactly one refund call with idempotency key X")."""

    request_id: str
    method: str
    path: str
    params: dict[str, Any]
    idempotency_key: str | None
    api_key: str | None
    status: int
    # True when the answer was an idempotent replay of an earlier one.
    replayed: bool
    at: float


@dataclass(frozen=True)
class StartedRequest:
    """An API request received and not answered yet (see FakeStripe.slow_down)."""

    request_id: str
    method: str
    path: str
    idempotency_key: str | None
    at: float


@dataclass
class Store:
    sessions: dict[str, JsonObject] = field(default_factory=dict)
    session_state: dict[str, SessionState] = field(default_factory=dict)
    payment_intents: dict[str, JsonObject] = field(default_factory=dict)
    charges: dict[str, JsonObject] = field(default_factory=dict)
    refunds: dict[str, JsonObject] = field(default_factory=dict)
    # In creation order, as Stripe lists them (newest last here).
    events: dict[str, JsonObject] = field(default_factory=dict)
    # Scoped by API key, as Stripe scopes keys to the account and mode.
    idempotency: dict[tuple[str, str], IdempotencyRecord] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    # By request id, while each is being answered.
    in_flight: dict[str, StartedRequest] = field(default_factory=dict)

    def session(self, session_id: str) -> JsonObject:
        try:
            return self.sessions[session_id]
        except KeyError:
            raise no_such("checkout.session", session_id) from None

    def payment_intent(self, intent_id: str, *, param: str = "id", status: int = 404) -> JsonObject:
        try:
            return self.payment_intents[intent_id]
        except KeyError:
            raise no_such("payment_intent", intent_id, param=param, status=status) from None

    def charge(self, charge_id: str, *, param: str = "id", status: int = 404) -> JsonObject:
        try:
            return self.charges[charge_id]
        except KeyError:
            raise no_such("charge", charge_id, param=param, status=status) from None

    def refund(self, refund_id: str) -> JsonObject:
        try:
            return self.refunds[refund_id]
        except KeyError:
            raise no_such("refund", refund_id) from None

    def event(self, event_id: str) -> JsonObject:
        try:
            return self.events[event_id]
        except KeyError:
            raise no_such("event", event_id) from None

    def lookup(self, object_id: str) -> JsonObject | None:
        """Any object by id, for `expand`; None if there is none."""
        for table in (self.sessions, self.payment_intents, self.charges, self.refunds):
            if object_id in table:
                return table[object_id]
        return None

    def clear(self) -> None:
        self.sessions.clear()
        self.session_state.clear()
        self.payment_intents.clear()
        self.charges.clear()
        self.refunds.clear()
        self.events.clear()
        self.idempotency.clear()
        self.requests.clear()


def snapshot(obj: JsonObject) -> JsonObject:
    """A copy that later changes to `obj` do not reach: what an API answer or
    an event's `data.object` holds."""
    return copy.deepcopy(obj)
