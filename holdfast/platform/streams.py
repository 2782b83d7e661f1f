"""The change messages the outbox relay publishes and consumers read.

One Redis Stream per outbox topic. Each entry carries the outbox row: its
dedupe key (so a consumer can recognise a message delivered twice), tenant,
message key, JSON payload, when the change was written (to measure lag), and
the trace context and correlation id of the request that made it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from holdfast.platform.config import PlatformSettings
from holdfast.platform.redis import redis_key

# Changes that move availability; the message key is the resource id and the
# payload names the change and the slots it touched.
AVAILABILITY_TOPIC = "availability"
# Payment actions to take at Stripe after a commit (never inside a
# transaction), e.g. expiring the checkout of a lapsed hold. Not published to a
# stream: the booking service's relay carries them out itself.
PAYMENTS_TOPIC = "payments"


def stream_position(stream_id: str | bytes) -> tuple[int, int]:
    """A stream entry id ("<millis>-<seq>") as something that sorts in stream order."""
    text = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    millis, _, seq = text.partition("-")
    return int(millis), int(seq or 0)


def stream_key(settings: PlatformSettings, topic: str) -> str:
    return redis_key(settings, "stream", topic)


@dataclass(frozen=True)
class ChangeMessage:
    topic: str
    message_key: str
    tenant_id: str
    dedupe_key: str
    payload: dict[str, Any]
    written_at: datetime
    traceparent: str | None = None
    correlation_id: str = ""
    # Set on messages read from the stream: the entry's id there.
    stream_id: str = field(default="", compare=False)

    def to_fields(self) -> dict[str, str]:
        return {
            "key": self.message_key,
            "tenant": self.tenant_id,
            "dedupe": self.dedupe_key,
            "payload": json.dumps(self.payload, separators=(",", ":")),
            "written_at": self.written_at.isoformat(),
            "traceparent": self.traceparent or "",
            "correlation_id": self.correlation_id,
        }

    @staticmethod
    def subject_of(fields: dict[bytes, bytes]) -> tuple[str, str]:
        """(tenant, message key) of a stream entry, without parsing the rest."""
        return fields[b"tenant"].decode(), fields[b"key"].decode()

    @classmethod
    def from_entry(cls, topic: str, stream_id: bytes, fields: dict[bytes, bytes]) -> ChangeMessage:
        text = {k.decode(): v.decode() for k, v in fields.items()}
        return cls(
            topic=topic,
            message_key=text["key"],
            tenant_id=text["tenant"],
            dedupe_key=text["dedupe"],
            payload=json.loads(text["payload"]),
            written_at=datetime.fromisoformat(text["written_at"]),
            traceparent=text["traceparent"] or None,
            correlation_id=text["correlation_id"],
            stream_id=stream_id.decode(),
        )
