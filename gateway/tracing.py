"""The gateway's server spans: OpenTelemetry's FastAPI instrumentation while
spans are exported, and while they are not, only what is seen of them: each
request runs in a span context of its own (a child of the caller's
traceparent, or a new trace), so log lines, downstream calls and outbox rows
carry its trace id as before.

Measured under load (docs/benchmarks.md, issue 14), the instrumentation
cost a tenth of the gateway's CPU per request even with every span dropped
unrecorded: it names each span by matching the request's route a second
time, gathers its attributes and wraps every send. FastAPI's own built-in
telemetry is off: the instrumentation above does that work when it is wanted.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from starlette.types import ASGIApp, Receive, Scope, Send

from holdfast.platform.telemetry import exporting, tracer

# FastAPI(telemetry=...): its native spans, metrics and logs, all off.
NATIVE_TELEMETRY_OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
# The headers the propagators read (W3C trace context and baggage).
_PROPAGATED = frozenset({b"traceparent", b"tracestate", b"baggage"})


def trace_requests(app: FastAPI, untraced_paths: Iterable[str]) -> None:
    """Server spans for every request but `untraced_paths` (probes, scrapes)."""
    if exporting():
        # Spans named by route template; the instrumentation puts itself
        # outermost, so the edge's correlation id lands on its span.
        FastAPIInstrumentor.instrument_app(
            app, excluded_urls=",".join(untraced_paths), exclude_spans=["receive", "send"]
        )
    else:
        app.add_middleware(SpanContext, untraced=frozenset(untraced_paths))


class SpanContext:
    """Each request in an unrecorded server span of its own."""

    def __init__(self, app: ASGIApp, untraced: frozenset[str]) -> None:
        self._app = app
        self._untraced = untraced

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._untraced:
            await self._app(scope, receive, send)
            return
        carrier = {
            name.decode(): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in _PROPAGATED
        }
        parent = propagate.extract(carrier)
        span = tracer.start_span(scope["method"], parent, kind=trace.SpanKind.SERVER)
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        try:
            await self._app(scope, receive, send)
        finally:
            otel_context.detach(token)
            span.end()
