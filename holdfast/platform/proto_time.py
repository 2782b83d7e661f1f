"""Timestamps and time ranges between protobuf and aware UTC datetimes."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from holdfast.contracts.common.v1 import time_range_pb2


def timestamp(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value.astimezone(UTC))
    return ts


def time_range(start: datetime, end: datetime) -> time_range_pb2.TimeRange:
    return time_range_pb2.TimeRange(start_time=timestamp(start), end_time=timestamp(end))


def read_time_range(
    message: time_range_pb2.TimeRange,
) -> tuple[datetime | None, datetime | None]:
    start = message.start_time.ToDatetime(UTC) if message.HasField("start_time") else None
    end = message.end_time.ToDatetime(UTC) if message.HasField("end_time") else None
    return start, end
