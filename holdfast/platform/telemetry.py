"""OpenTelemetry set-up from the standard OTEL_* variables.

Spans are recorded and exported only when OTEL_EXPORTER_OTLP_ENDPOINT is set.
The W3C trace context and baggage propagators are OpenTelemetry's defaults,
and OTEL_PROPAGATORS can change them.
"""

from __future__ import annotations

import os

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

_configured = False


def configure_telemetry(service: str) -> None:
    """Installs the tracer provider and library instrumentations, once per process.

    Without an OTLP endpoint neither the SDK provider nor the asyncpg
    instrumentation is installed: their spans would be built only to be
    dropped, and measured, that was most of a millisecond per hold. The trace
    context a caller sends still flows through every gRPC call and onto the
    log lines.
    """
    global _configured
    if _configured:
        return
    _configured = True
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return
    AsyncPGInstrumentor().instrument()  # type: ignore[no-untyped-call]
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", service)})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)


def shutdown_telemetry() -> None:
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span, for hops that are not calls
    (outbox rows, Stripe metadata); None when no span is being recorded."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


def context_from_traceparent(traceparent: str | None) -> otel_context.Context:
    """The context a traceparent names, to continue or link to its trace."""
    return propagate.extract({"traceparent": traceparent} if traceparent else {})
