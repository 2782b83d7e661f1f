"""Which request an event goes back to: the checkout (or payment) metadata
carries the traceparent and correlation id of the request that started the
payment (services.booking.payments.service), so receiving and applying the event
link to that request's trace and log under its correlation id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opentelemetry import trace

from holdfast.platform.context import correlation_id_from
from holdfast.platform.telemetry import link_to


@dataclass(frozen=True)
class Cause:
    correlation_id: str
    links: list[trace.Link]


def caused_by(obj: Any, fallback_correlation_id: str) -> Cause:
    """The cause named in a Stripe object's metadata; the correlation id falls
    back to the delivery's own when the metadata has none (an event about
    something holdfast did not start, or an older checkout)."""
    metadata = obj.get("metadata") if isinstance(obj, dict) else None
    metadata = metadata if isinstance(metadata, dict) else {}
    correlation_id = correlation_id_from(metadata.get("correlation_id"), fallback_correlation_id)
    return Cause(correlation_id, link_to(metadata.get("traceparent"), correlation_id))
