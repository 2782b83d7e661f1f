"""The gateway's server spans: OpenTelemetry's FastAPI instrumentation while
spans are exported, and while they are not, only what is seen of them
(holdfast.platform.http_tracing). FastAPI's own built-in telemetry is off:
the instrumentation above does that work when it is wanted.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

from holdfast.platform.http_tracing import UnrecordedServerSpan
from holdfast.platform.telemetry import exporting

# FastAPI(telemetry=...): its native spans, metrics and logs, all off.
NATIVE_TELEMETRY_OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def trace_requests(app: FastAPI, untraced_paths: Iterable[str]) -> None:
    """Server spans for every request but `untraced_paths` (probes, scrapes)."""
    if exporting():
        # Spans named by route template; the instrumentation puts itself
        # outermost, so the edge's correlation id lands on its span.
        FastAPIInstrumentor.instrument_app(
            app, excluded_urls=",".join(untraced_paths), exclude_spans=["receive", "send"]
        )
    else:
        app.add_middleware(UnrecordedServerSpan, untraced=frozenset(untraced_paths))
