"""A small OTLP/gRPC trace collector: what Jaeger's port 4317 is to the
services, for a test to read back the spans they exported."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1 import trace_pb2


@dataclass(frozen=True)
class Link:
    trace_id: str
    span_id: str


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    kind: str  # SERVER, CLIENT, INTERNAL, PRODUCER, CONSUMER
    trace_id: str
    span_id: str
    parent_span_id: str  # "" for a root span
    attributes: dict[str, Any]
    links: tuple[Link, ...]

    def __str__(self) -> str:
        return f"{self.service}:{self.kind}:{self.name}"


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


def _attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


def _kind(span: trace_pb2.Span) -> str:
    return trace_pb2.Span.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_")


class TraceCollector(trace_service_pb2_grpc.TraceServiceServicer):
    """Keeps every span exported to it, flattened, in arrival order."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self._server = grpc.aio.server()
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
            self, self._server
        )
        self.port = 0

    async def start(self) -> str:
        """Listens on a free local port; returns the endpoint for OTEL_EXPORTER_OTLP_ENDPOINT."""
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        await self._server.stop(0)

    async def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        for resource_spans in request.resource_spans:
            service = str(_attributes(resource_spans.resource.attributes)["service.name"])
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(
                        Span(
                            service=service,
                            name=span.name,
                            kind=_kind(span),
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            attributes=_attributes(span.attributes),
                            links=tuple(
                                Link(link.trace_id.hex(), link.span_id.hex()) for link in span.links
                            ),
                        )
                    )
        return trace_service_pb2.ExportTraceServiceResponse()
