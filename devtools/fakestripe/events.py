"""Stripe `event` objects: what happened, with a snapshot of the object.

Stripe creates an event for every change whether or not anyone listens, and a
webhook endpoint receives only the types it is enabled for; the fake does the
same (see `FakeStripeConfig.enabled_events`).
"""

from __future__ import annotations

import json
from collections.abc import Collection

from devtools.fakestripe.objects import JsonObject, build, new_id
from devtools.fakestripe.store import snapshot
from services.webhooks.events import HANDLED_EVENTS

# What the fake's webhook endpoint is sent unless configured otherwise: the
# checkout sessions' events holdfast handles (services.webhooks.events, the
# one list). Its other events, `charge.refunded` among them, are created too
# and sent only when enabled, as the payment tests do (all of HANDLED_EVENTS).
CHECKOUT_EVENTS = frozenset(t for t in HANDLED_EVENTS if t.startswith("checkout.session."))
ALL_EVENTS = "*"


def build_event(
    event_type: str,
    obj: JsonObject,
    *,
    created: int,
    api_version: str,
    request_id: str | None = None,
    idempotency_key: str | None = None,
    previous_attributes: JsonObject | None = None,
    pending_webhooks: int = 0,
) -> JsonObject:
    """An event about `obj` as it is now. `request_id` names the API request
    that caused it; events the customer or time causes have none."""
    data: JsonObject = {"object": snapshot(obj)}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    return build(
        "event",
        id=new_id("evt"),
        api_version=api_version,
        created=created,
        data=data,
        pending_webhooks=pending_webhooks,
        request={"id": request_id, "idempotency_key": idempotency_key},
        type=event_type,
    )


def is_enabled(event_type: str, enabled_events: Collection[str]) -> bool:
    return ALL_EVENTS in enabled_events or event_type in enabled_events


def payload(event: JsonObject) -> bytes:
    """The body Stripe posts: the event as pretty-printed JSON."""
    return json.dumps(event, indent=2).encode("utf-8")
