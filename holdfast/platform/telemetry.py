"""OpenTelemetry set-up from the standard OTEL_* variables, and the spans of
the hops that are not calls.

Every process installs the SDK tracer provider (unless OTEL_SDK_DISABLED is
true). Spans are exported over OTLP only when OTEL_EXPORTER_OTLP_ENDPOINT (or
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set, and only then are gRPC (in the
bootstrap), asyncpg, Redis, httpx and the HTTP servers instrumented: without
an exporter the trace context still passes through (log lines, outbox rows
and Stripe metadata keep their trace ids), but no span is built per query. The W3C trace context and
baggage propagators are OpenTelemetry's defaults; OTEL_PROPAGATORS changes them.

Two hops are not calls, so the trace context crosses them as data: outbox rows
(and the stream messages made from them) and Stripe's checkout metadata carry
the traceparent and the correlation id of the request that caused them. The
outbox relay continues that trace; the availability consumer and the webhook
processor start their own and link to it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from opentelemetry import baggage, propagate, trace
from opentelemetry import context as otel_context
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.utils import _SUPPRESS_INSTRUMENTATION_KEY_PLAIN
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import StatusCode
from opentelemetry.util.types import AttributeValue

from holdfast.platform.context import (
    CORRELATION_BAGGAGE_KEY,
    correlation_id_var,
    current_correlation_id,
)

# The span attribute an operator searches for in Jaeger: the X-Request-Id.
CORRELATION_ATTRIBUTE = "holdfast.correlation_id"

tracer = trace.get_tracer("holdfast")
_configured = False


class CorrelationIdSpanProcessor(SpanProcessor):
    """Copies the correlation id onto every span as it starts, library spans
    (asyncpg, Redis, httpx, gRPC) included: from the baggage of the span's
    parent context, else from the request's context variable."""

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        correlation_id = baggage.get_baggage(CORRELATION_BAGGAGE_KEY, parent_context)
        correlation_id = correlation_id or current_correlation_id()
        if correlation_id:
            span.set_attribute(CORRELATION_ATTRIBUTE, str(correlation_id))

    def on_end(self, span: ReadableSpan) -> None:
        pass


def exporting() -> bool:
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def configure_telemetry(service: str) -> None:
    """Installs the tracer provider and library instrumentations, once per process.

    Without an exporter nothing is recorded (the sampler is ALWAYS_OFF), yet
    every span still gets real ids: log lines, outbox rows and Stripe metadata
    carry a trace id, and a caller's trace id passes through. Measured, spans
    built only to be dropped cost most of a millisecond per hold.
    """
    global _configured
    if _configured or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return
    _configured = True
    resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", service)})
    # None: the sampler OTEL_TRACES_SAMPLER names (parent-based always-on by default).
    provider = TracerProvider(resource=resource, sampler=None if exporting() else ALWAYS_OFF)
    provider.add_span_processor(CorrelationIdSpanProcessor())
    if exporting():
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    if exporting():
        # Unexported, their spans would only cost CPU on every query and call.
        AsyncPGInstrumentor().instrument()  # type: ignore[no-untyped-call]
        RedisInstrumentor().instrument()
        HTTPXClientInstrumentor().instrument()


def shutdown_telemetry() -> None:
    """Exports what is left; the process is about to end."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span, for hops that are not calls
    (outbox rows, Stripe metadata); None outside any trace."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


def context_from_traceparent(traceparent: str | None) -> otel_context.Context:
    """The context a traceparent names, to continue or link to its trace."""
    return propagate.extract({"traceparent": traceparent} if traceparent else {})


def link_to(traceparent: object, correlation_id: str = "") -> list[trace.Link]:
    """A link to the span a stored traceparent names; none if it names none."""
    if not isinstance(traceparent, str) or not traceparent:
        return []
    span_context = trace.get_current_span(context_from_traceparent(traceparent)).get_span_context()
    if not span_context.is_valid:
        return []
    return [trace.Link(span_context, {CORRELATION_ATTRIBUTE: correlation_id})]


@contextmanager
def correlation_scope(correlation_id: str) -> Iterator[None]:
    """Makes `correlation_id` the current one: in the context variable the log
    lines read, in the baggage every outgoing call carries, and on the
    current span."""
    cid_token = correlation_id_var.set(correlation_id)
    otel_token = otel_context.attach(baggage.set_baggage(CORRELATION_BAGGAGE_KEY, correlation_id))
    try:
        if correlation_id:
            trace.get_current_span().set_attribute(CORRELATION_ATTRIBUTE, correlation_id)
        yield
    finally:
        otel_context.detach(otel_token)
        correlation_id_var.reset(cid_token)


@contextmanager
def untraced() -> Iterator[None]:
    """Library instrumentation off: for polling loops, which would otherwise
    send a root trace per poll (every second, per replica) to the backend."""
    token = otel_context.attach(_instrumentation_set(suppressed=True))
    try:
        yield
    finally:
        otel_context.detach(token)


def _instrumentation_set(
    *, suppressed: bool, context: otel_context.Context | None = None
) -> otel_context.Context:
    context = otel_context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, suppressed, context)
    return otel_context.set_value(_SUPPRESS_INSTRUMENTATION_KEY_PLAIN, suppressed, context)


def start_caused_span(
    name: str,
    *,
    correlation_id: str,
    parent: str | None = None,
    links: Sequence[trace.Link] = (),
    kind: trace.SpanKind = trace.SpanKind.INTERNAL,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> trace.Span:
    """Starts (without making it current) the span of work an earlier request
    caused: a child of the `parent` traceparent, continuing that trace, or
    else a new trace with `links` to it. The caller ends it."""
    attributes = dict(attributes or {})
    if correlation_id:
        attributes[CORRELATION_ATTRIBUTE] = correlation_id
    context = context_from_traceparent(parent)
    return tracer.start_span(name, context, kind=kind, attributes=attributes, links=links)


@contextmanager
def ending(spans: Sequence[trace.Span], failure: str) -> Iterator[None]:
    """Ends `spans` (started for work done in one go) after the block; if the
    block raises, marks each failed, saying `failure`."""
    try:
        yield
    except Exception as error:
        for span in spans:
            span.record_exception(error)
            span.set_status(StatusCode.ERROR, failure)
        raise
    finally:
        for span in spans:
            span.end()


@contextmanager
def working_in(span: trace.Span, correlation_id: str) -> Iterator[trace.Span]:
    """Makes a span from `start_caused_span` current for the block and ends it
    after: inside, library instrumentation is on again (it is off in polling
    loops) and the correlation id is the cause's."""
    with trace.use_span(span, end_on_exit=True):
        token = otel_context.attach(_instrumentation_set(suppressed=False))
        try:
            with correlation_scope(correlation_id):
                yield span
        finally:
            otel_context.detach(token)
