"""Without an exporter the OpenTelemetry instrumentation is not installed;
the server interceptor still continues the caller's trace context and
baggage, so a call's log line carries the caller's trace id and the
correlation id its baggage names."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator

import grpc
import pytest

from holdfast.contracts.availability.v1 import availability_pb2, availability_pb2_grpc
from holdfast.platform.logging import JsonFormatter, access_log
from holdfast.platform.proto_time import time_range
from tests.support.availability import WINDOW

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter("availability"))
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def access_lines() -> Iterator[_Lines]:
    handler, level = _Lines(), access_log.level
    access_log.addHandler(handler)
    access_log.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        access_log.removeHandler(handler)
        access_log.setLevel(level)


async def test_a_call_continues_the_callers_trace_and_baggage(
    availability_channel: grpc.aio.Channel, tenant: str, access_lines: _Lines
) -> None:
    stub = availability_pb2_grpc.AvailabilityServiceStub(availability_channel)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.GetAvailability(
            availability_pb2.GetAvailabilityRequest(
                resource_id=str(uuid.uuid4()), time_range=time_range(*WINDOW)
            ),
            metadata=(
                ("x-tenant-id", tenant),
                ("traceparent", TRACEPARENT),
                ("baggage", "holdfast.correlation_id=corr-in-baggage"),
            ),
        )
    assert raised.value.code() is grpc.StatusCode.NOT_FOUND

    [line] = [x for x in access_lines.lines if str(x["rpc"]).endswith("/GetAvailability")]
    assert line["trace_id"] == TRACE_ID
    assert line["correlation_id"] == "corr-in-baggage"
    assert line["code"] == "NOT_FOUND"
