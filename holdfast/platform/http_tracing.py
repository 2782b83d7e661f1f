"""The HTTP servers' spans while nothing is exported: each request runs in an
unrecorded server span of its own, a child of the caller's traceparent (or a
new trace), so log lines, downstream calls and outbox rows carry its trace id.

OpenTelemetry's ASGI and FastAPI instrumentations do this and much more
(route matching for span names, attributes, a wrapper around every send);
measured under load with every span dropped, that was a tenth of the
gateway's CPU per request and a quarter of the webhook receiver's
(docs/benchmarks.md, issue 14). While spans are exported they are used.
"""

from __future__ import annotations

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from starlette.types import ASGIApp, Receive, Scope, Send

from holdfast.platform.telemetry import tracer

# The headers the propagators read (W3C trace context and baggage).
_PROPAGATED = frozenset({b"traceparent", b"tracestate", b"baggage"})


class UnrecordedServerSpan:
    """ASGI middleware: each HTTP request but `untraced` paths (probes,
    scrapes) in a server span of its own, current while it is handled."""

    def __init__(self, app: ASGIApp, untraced: frozenset[str] = frozenset()) -> None:
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
