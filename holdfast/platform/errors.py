"""Domain errors, free of any transport: the gRPC layer maps them to statuses.

Each error names the gRPC-style category it belongs to (design section 10),
an UPPER_SNAKE reason a caller can branch on, a human message, and for invalid
arguments the offending fields.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field


class ErrorKind(enum.Enum):
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    ABORTED = "ABORTED"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    UNAVAILABLE = "UNAVAILABLE"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    PERMISSION_DENIED = "PERMISSION_DENIED"


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


@dataclass
class DomainError(Exception):
    kind: ErrorKind
    reason: str
    message: str
    metadata: Mapping[str, str] = field(default_factory=dict)
    violations: tuple[FieldViolation, ...] = ()
    # Seconds after which a retry may succeed (ABORTED, UNAVAILABLE, ...).
    retry_after: float | None = None

    def __str__(self) -> str:
        return f"{self.kind.value} {self.reason}: {self.message}"


def invalid_argument(violations: list[FieldViolation]) -> DomainError:
    fields = ", ".join(v.field for v in violations)
    return DomainError(
        ErrorKind.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
        f"invalid request: {fields}",
        violations=tuple(violations),
    )


def not_found(what: str, identifier: str) -> DomainError:
    return DomainError(
        ErrorKind.NOT_FOUND,
        f"{what.upper()}_NOT_FOUND",
        f"{what} {identifier} not found",
        metadata={what + "_id": identifier},
    )


def failed_precondition(
    reason: str, message: str, metadata: Mapping[str, str] | None = None
) -> DomainError:
    return DomainError(ErrorKind.FAILED_PRECONDITION, reason, message, metadata or {})


def aborted(reason: str, message: str, retry_after: float) -> DomainError:
    return DomainError(ErrorKind.ABORTED, reason, message, retry_after=retry_after)


def unavailable(reason: str, message: str, retry_after: float = 1.0) -> DomainError:
    return DomainError(ErrorKind.UNAVAILABLE, reason, message, retry_after=retry_after)
