import os
import subprocess
import sys

from opentelemetry import baggage
from opentelemetry import context as otel_context
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from holdfast.platform.context import CORRELATION_BAGGAGE_KEY, current_correlation_id
from holdfast.platform.telemetry import (
    CORRELATION_ATTRIBUTE,
    CorrelationIdSpanProcessor,
    correlation_scope,
    link_to,
    start_caused_span,
    untraced,
    working_in,
)

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def recording_tracer() -> tuple[TracerProvider, InMemorySpanExporter]:
    provider = TracerProvider()
    exported = InMemorySpanExporter()
    provider.add_span_processor(CorrelationIdSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exported))
    return provider, exported


def test_every_span_gets_the_correlation_id_of_its_context() -> None:
    provider, exported = recording_tracer()
    tracer = provider.get_tracer("test")
    with correlation_scope("req-1"), tracer.start_as_current_span("library call"):
        pass
    # Baggage from a caller, without the context variable (a server span).
    token = otel_context.attach(baggage.set_baggage(CORRELATION_BAGGAGE_KEY, "req-2"))
    try:
        with tracer.start_as_current_span("server"):
            pass
    finally:
        otel_context.detach(token)
    with tracer.start_as_current_span("no request"):
        pass

    spans = {s.name: s.attributes or {} for s in exported.get_finished_spans()}
    assert spans["library call"][CORRELATION_ATTRIBUTE] == "req-1"
    assert spans["server"][CORRELATION_ATTRIBUTE] == "req-2"
    assert CORRELATION_ATTRIBUTE not in spans["no request"]


def test_polling_is_untraced_but_the_work_it_finds_is_traced_under_its_cause() -> None:
    assert is_instrumentation_enabled()
    with untraced():
        assert not is_instrumentation_enabled()
        publish = start_caused_span("publish", correlation_id="req-3", parent=TRACEPARENT)
        with working_in(publish, "req-3"):
            assert is_instrumentation_enabled()
            assert current_correlation_id() == "req-3"
            assert baggage.get_baggage(CORRELATION_BAGGAGE_KEY) == "req-3"
        assert not is_instrumentation_enabled()
        assert current_correlation_id() == ""
    assert is_instrumentation_enabled()


def test_links_go_only_to_valid_traceparents() -> None:
    [link] = link_to(TRACEPARENT, "req-4")
    assert format(link.context.span_id, "016x") == "b7ad6b7169203331"
    assert format(link.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert (link.attributes or {})[CORRELATION_ATTRIBUTE] == "req-4"
    assert link_to(None) == []
    assert link_to("") == []
    assert link_to("00-not-a-traceparent") == []
    assert link_to({"traceparent": TRACEPARENT}) == []


_WRAPPED_LIBRARIES = """
import asyncpg, httpx, redis.asyncio
from holdfast.platform.telemetry import configure_telemetry
configure_telemetry("probe")
print(
    hasattr(asyncpg.connection.Connection.execute, "__wrapped__"),
    hasattr(redis.asyncio.Redis.execute_command, "__wrapped__"),
    hasattr(httpx.AsyncHTTPTransport.handle_async_request, "__wrapped__"),
)
"""


def _wrapped_libraries(environment: dict[str, str]) -> str:
    """Which client libraries a fresh process's configure_telemetry wraps."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")} | environment
    done = subprocess.run(
        [sys.executable, "-c", _WRAPPED_LIBRARIES], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_client_libraries_are_wrapped_only_when_spans_are_exported() -> None:
    # Unexported spans of every query and Redis call cost CPU on every
    # request and are dropped unseen (about 4 % of the booking service's).
    assert _wrapped_libraries({}) == "False False False"
    exporting = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}
    assert _wrapped_libraries(exporting) == "True True True"
