"""gRPC interceptors shared by every service.

The server side gives each call a correlation id (from the caller's metadata
or baggage, else a new one), puts it in the OpenTelemetry baggage, on the span
and in the logs, reads once who the call acts for (the tenant and actor that
`current_tenant()` and `current_actor()` answer), turns exceptions into rich
statuses so no handler has to, and counts and logs each call.
The client side passes the correlation id on. Trace context and baggage
themselves travel through the OpenTelemetry gRPC instrumentation's
interceptors, which the bootstrap installs in front of these.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import grpc
from opentelemetry import baggage

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
from holdfast.platform.telemetry import correlation_scope

log = logging.getLogger(__name__)

Behavior = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


def _incoming_correlation_id(metadata: Mapping[str, str | bytes]) -> str:
    return correlation_id_from(
        metadata.get(CORRELATION_ID_KEY),
        metadata.get(REQUEST_ID_KEY),
        baggage.get_baggage(CORRELATION_BAGGAGE_KEY),
    )


class ServerContextInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, error_domain: str, metrics: RpcMetrics | None = None) -> None:
        self._domain = error_domain
        self._metrics = metrics

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        wrapped = self._wrap(handler.unary_unary, handler_call_details.method)
        return grpc.unary_unary_rpc_method_handler(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _wrap(self, behavior: Behavior, method: str) -> Behavior:
        domain = self._domain
        metrics = self._metrics

        async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            code = "OK"
            metadata = dict(context.invocation_metadata() or ())
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
                    status = status_for(error, domain, correlation_id)
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
                    await context.abort_with_status(internal_status(domain, correlation_id))
                finally:
                    caller_var.reset(caller_token)
                    elapsed = time.perf_counter() - started
                    if metrics is not None:
                        metrics.observe(method, code, elapsed)
                    access_log.info(
                        "rpc %s %s",
                        method,
                        code,
                        extra={
                            "rpc": method,
                            "code": code,
                            "duration_ms": round(elapsed * 1000, 2),
                        },
                    )

        return call


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
