"""Turns domain errors into rich gRPC statuses (AIP-193) and back.

A status carries google.rpc.ErrorInfo (reason, domain, metadata), BadRequest
field violations for invalid arguments and RetryInfo where a retry may work.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from holdfast.platform.errors import DomainError, ErrorKind

_GRPC_CODE = {kind: getattr(grpc.StatusCode, kind.value) for kind in ErrorKind}


@dataclass(frozen=True)
class _Status(grpc.Status):  # type: ignore[misc]
    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, str | bytes], ...]


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def _with_metadata(status: grpc.Status, extra: tuple[tuple[str, str], ...]) -> grpc.Status:
    return _Status(status.code, status.details, tuple(status.trailing_metadata) + extra)


def status_for(error: DomainError, domain: str, correlation_id: str) -> grpc.Status:
    code = _GRPC_CODE[error.kind]
    metadata = dict(error.metadata)
    metadata["correlation_id"] = correlation_id
    details = [
        _pack(error_details_pb2.ErrorInfo(reason=error.reason, domain=domain, metadata=metadata))
    ]
    if error.violations:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in error.violations
            ]
        )
        details.append(_pack(bad_request))
    if error.retry_after is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(error.retry_after * 1e9))
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    proto = status_pb2.Status(code=code.value[0], message=error.message, details=details)
    return _with_metadata(rpc_status.to_status(proto), (("x-correlation-id", correlation_id),))


def internal_status(domain: str, correlation_id: str) -> grpc.Status:
    """What a caller sees of an unexpected failure: no internals, just the id to report."""
    info = error_details_pb2.ErrorInfo(
        reason="INTERNAL", domain=domain, metadata={"correlation_id": correlation_id}
    )
    proto = status_pb2.Status(
        code=code_pb2.INTERNAL,
        message=f"internal error; quote correlation id {correlation_id}",
        details=[_pack(info)],
    )
    return _with_metadata(rpc_status.to_status(proto), (("x-correlation-id", correlation_id),))


@dataclass(frozen=True)
class ErrorDetails:
    """The parts of a rich status a client acts on."""

    code: grpc.StatusCode
    message: str
    reason: str = ""
    domain: str = ""
    metadata: dict[str, str] | None = None
    field_violations: tuple[tuple[str, str], ...] = ()
    retry_after: float | None = None


def details_of(error: grpc.aio.AioRpcError) -> ErrorDetails:
    """Reads ErrorInfo, BadRequest and RetryInfo back out of a failed call."""
    result = ErrorDetails(code=error.code(), message=error.details() or "")
    proto = rpc_status.from_call(error)
    if proto is None:
        return result
    reason, domain, metadata = "", "", None
    violations: tuple[tuple[str, str], ...] = ()
    retry_after = None
    for detail in proto.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason, domain, metadata = info.reason, info.domain, dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations = tuple((v.field, v.description) for v in bad.field_violations)
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            retry_after = retry.retry_delay.ToNanoseconds() / 1e9
    return ErrorDetails(
        result.code, result.message, reason, domain, metadata, violations, retry_after
    )
