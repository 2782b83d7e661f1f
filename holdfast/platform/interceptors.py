"""gRPC interceptors shared by every service.

The server side gives each call a correlation id (from the caller's metadata
or baggage, else a new one), puts it in the OpenTelemetry baggage, on the span
and in the logs, reads once who the call acts for (the tenant and actor that
`current_tenant()` and `current_actor()` answer), turns exceptions into rich
statuses so no handler has to, and counts and logs each call.
The client side passes the correlation id on. Trace context and baggage
themselves travel through the OpenTelemetry gRPC instrumentation's
interceptors, which the bootstrap installs in front of these while spans are
exported. While they are not (nothing would be recorded), the server
interceptor does the little that still matters itself (`starts_span`): it
continues the caller's trace context and baggage, if the call carries any,
under an unsampled server span, so log lines still carry a trace id. That
costs a fraction of the instrumentation's per-call work (attributes, a
wrapped servicer context, a filter run on every call's method name).

Work that does not change from call to call is done once: each method's
wrapped handler is made on its first call and kept.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import grpc
from opentelemetry import baggage, propagate, trace
from opentelemetry import context as otel_context

from holdfast.platform.caller import caller_from
from holdfast.platform.context import (
    CORRELATION_BAGGAGE_KEY,
    CORRELATION_ID_KEY,
    REQUEST_ID_KEY,
    caller_var,
    correlation_id_from,
    current_correlation_id,
)
from holdfast.platform.errors import DomainError
from holdfast.platform.grpc_errors import internal_status, status_for
from holdfast.platform.logging import access_log
from holdfast.platform.metrics import RpcMetrics
from holdfast.platform.telemetry import correlation_scope, tracer

log = logging.getLogger(__name__)

Behavior = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
# Metadata keys of the W3C propagators (trace context and baggage).
_PROPAGATION_KEYS = ("traceparent", "baggage")


def _incoming_correlation_id(metadata: Mapping[str, str | bytes]) -> str:
    return correlation_id_from(
        metadata.get(CORRELATION_ID_KEY),
        metadata.get(REQUEST_ID_KEY),
        baggage.get_baggage(CORRELATION_BAGGAGE_KEY),
    )


def _server_span(
    method: str, metadata: Mapping[str, str | bytes]
) -> tuple[trace.Span, otel_context.Context]:
    """An (unsampled) server span of this call, and the caller's trace context
    and baggage (if the call carries any) with that span as the current one."""
    if any(key in metadata for key in _PROPAGATION_KEYS):
        parent = propagate.extract(metadata)
    else:
        parent = otel_context.get_current()
    span = tracer.start_span(method, parent, kind=trace.SpanKind.SERVER)
    return span, trace.set_span_in_context(span, parent)


class ServerContextInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """`starts_span`: whether this interceptor puts each call in its trace
    context (see above), i.e. the OpenTelemetry instrumentation is not installed."""

    def __init__(
        self, error_domain: str, metrics: RpcMetrics | None = None, *, starts_span: bool = False
    ) -> None:
        self._domain = error_domain
        self._metrics = metrics
        self._starts_span = starts_span
        # Per method: the handler found, and the wrapped one made from it.
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = handler_call_details.method
        known = self._wrapped.get(method)
        if known is not None and known[0] is handler:
            return known[1]
        wrapped = grpc.unary_unary_rpc_method_handler(
            self._wrap(handler.unary_unary, method),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _wrap(self, behavior: Behavior, method: str) -> Behavior:
        starts_span = self._starts_span

        async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            metadata = dict(context.invocation_metadata() or ())
            if not starts_span:
                return await self._answer(behavior, method, request, context, metadata, started)
            span, span_context = _server_span(method, metadata)
            token = otel_context.attach(span_context)
            try:
                return await self._answer(behavior, method, request, context, metadata, started)
            finally:
                otel_context.detach(token)
                span.end()

        return call

    async def _answer(
        self,
        behavior: Behavior,
        method: str,
        request: Any,
        context: grpc.aio.ServicerContext,
        metadata: Mapping[str, str | bytes],
        started: float,
    ) -> Any:
        code = "OK"
        correlation_id = _incoming_correlation_id(metadata)
        # A call without a valid tenant is answered by the first
        # current_tenant() (inside the try below, so as a DomainError);
        # methods that need no tenant never ask.
        caller_token = caller_var.set(caller_from(metadata))
        with correlation_scope(correlation_id):
            try:
                return await behavior(request, context)
            except DomainError as error:
                # Set the status and return instead of aborting: an abort
                # raises, and the tracing interceptor would then format and
                # record a traceback for every "sold out", an expected
                # business answer.
                status = status_for(error, self._domain, correlation_id)
                code = status.code.name
                context.set_code(status.code)
                context.set_details(status.details)
                context.set_trailing_metadata(status.trailing_metadata)
                return None
            except grpc.aio.AbortError:
                # The handler aborted with its own status (none do today).
                code = getattr(context.code(), "name", "UNKNOWN")
                raise
            except Exception:
                code = grpc.StatusCode.INTERNAL.name
                log.exception("unexpected error in %s", method)
                await context.abort_with_status(internal_status(self._domain, correlation_id))
            finally:
                caller_var.reset(caller_token)
                self._answered(method, code, time.perf_counter() - started)

    def _answered(self, method: str, code: str, elapsed: float) -> None:
        if self._metrics is not None:
            self._metrics.observe(method, code, elapsed)
        access_log.info(
            "rpc %s %s",
            method,
            code,
            extra={"rpc": method, "code": code, "duration_ms": round(elapsed * 1000, 2)},
        )


class ClientCorrelationInterceptor(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Adds the current correlation id to outgoing calls that lack one."""

    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.ClientCallDetails, Any], Awaitable[Any]],
        client_call_details: grpc.ClientCallDetails,
        request: Any,
    ) -> Any:
        correlation_id = current_correlation_id()
        metadata = list(client_call_details.metadata or ())
        if correlation_id and not any(key == CORRELATION_ID_KEY for key, _ in metadata):
            metadata.append((CORRELATION_ID_KEY, correlation_id))
            client_call_details = grpc.aio.ClientCallDetails(
                client_call_details.method,
                client_call_details.timeout,
                metadata,
                client_call_details.credentials,
                client_call_details.wait_for_ready,
            )
        return await continuation(client_call_details, request)
