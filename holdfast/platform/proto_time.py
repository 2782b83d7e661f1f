"""Timestamps and time ranges between protobuf and aware UTC datetimes."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from holdfast.contracts.common.v1 import time_range_pb2
from holdfast.platform.validation import Violations


def timestamp(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value.astimezone(UTC))
    return ts


def time_range(start: datetime, end: datetime) -> time_range_pb2.TimeRange:
    return time_range_pb2.TimeRange(start_time=timestamp(start), end_time=timestamp(end))


def read_time_range(
    message: time_range_pb2.TimeRange,
) -> tuple[datetime | None, datetime | None]:
    """The range's ends (None where unset); ValueError or OverflowError when
    one lies outside years 1 to 9999, which a client can send."""
    start = message.start_time.ToDatetime(UTC) if message.HasField("start_time") else None
    end = message.end_time.ToDatetime(UTC) if message.HasField("end_time") else None
    return start, end


def checked_time_range(
    v: Violations, field: str, message: time_range_pb2.TimeRange
) -> tuple[datetime, datetime] | None:
    """The range as UTC datetimes, or None with the violation recorded on
    `field`: an end missing, not after the start, or outside years 1 to 9999."""
    try:
        bounds = read_time_range(message)
    except (ValueError, OverflowError):  # seconds beyond what a Timestamp may hold
        v.add(field, "start_time and end_time must lie within years 1 to 9999")
        return None
    return v.time_range(field, *bounds)
