import asyncio
import decimal
import io
import json
import logging
import threading
import uuid

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from holdfast.platform.context import correlation_id_var
from holdfast.platform.logging import JsonFormatter, TurnBatchedHandler


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


def batched(stream: io.StringIO) -> tuple[logging.Logger, TurnBatchedHandler]:
    handler = TurnBatchedHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger(f"test-batched-{id(stream)}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, handler


async def test_lines_of_one_loop_turn_are_written_together_at_the_next() -> None:
    stream = io.StringIO()
    logger, _ = batched(stream)

    for n in range(3):
        logger.info("line %d", n)
    before_the_turn_ends = stream.getvalue()
    await asyncio.sleep(0)

    assert before_the_turn_ends == ""
    assert stream.getvalue() == "line 0\nline 1\nline 2\n"


async def test_a_warning_is_written_at_once_after_the_lines_before_it() -> None:
    stream = io.StringIO()
    logger, _ = batched(stream)

    logger.info("served")
    logger.warning("something is off")

    assert stream.getvalue() == "served\nsomething is off\n"


async def test_flushing_writes_what_waits_and_a_thread_writes_at_once() -> None:
    stream = io.StringIO()
    logger, handler = batched(stream)

    logger.info("waiting")
    handler.flush()  # as logging.shutdown does at exit
    flushed = stream.getvalue()
    worker = threading.Thread(target=logger.info, args=("from a thread",))
    worker.start()
    worker.join()

    assert flushed == "waiting\n"
    assert stream.getvalue() == "waiting\nfrom a thread\n"


def test_outside_an_event_loop_lines_are_written_at_once() -> None:
    stream = io.StringIO()
    logger, _ = batched(stream)

    logger.info("at start-up")

    assert stream.getvalue() == "at start-up\n"
