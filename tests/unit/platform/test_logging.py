import decimal
import json
import logging
import uuid

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from holdfast.platform.context import correlation_id_var
from holdfast.platform.logging import JsonFormatter


def test_log_lines_carry_trace_span_and_correlation_ids() -> None:
    tracer = TracerProvider().get_tracer("test")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hold %s", ("h1",), None)
    record.hold_id = "h1"
    token = correlation_id_var.set("corr-7")
    try:
        with tracer.start_as_current_span("op") as span:
            line = json.loads(JsonFormatter("booking").format(record))
            context = span.get_span_context()
    finally:
        correlation_id_var.reset(token)

    assert line["message"] == "hold h1"
    assert line["service"] == "booking"
    assert line["correlation_id"] == "corr-7"
    assert line["hold_id"] == "h1"
    assert line["trace_id"] == format(context.trace_id, "032x")
    assert line["span_id"] == format(context.span_id, "016x")
    assert trace.get_current_span() is not span


def test_values_json_cannot_hold_are_logged_as_text() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "odd values", (), None)
    record.hold_id = uuid.UUID(int=7)
    record.amount = decimal.Decimal("12.50")
    record.huge = 2**70  # past what orjson takes: the standard encoder writes it
    record._private = "not logged"

    line = json.loads(JsonFormatter("booking").format(record))

    assert line["hold_id"] == "00000000-0000-0000-0000-000000000007"
    assert line["amount"] == "12.50"
    assert line["huge"] == 2**70
    assert "_private" not in line
