"""Responses as bytes, made from answers that are already serialized.

The caches hold each answer as a serialized `ResourceAvailability`. Both
responses that carry them have them as field 1 (`GetAvailabilityResponse.
availability`, `BatchGetAvailabilityResponse.availabilities`), and in the
protobuf wire format a message field is its tag, its length and its bytes;
a repeated one is that, once per element, in order. So a response is framed
around the cached bytes instead of parsing them into a message only for gRPC
to serialize it again: a cache hit costs no protobuf work at all.
"""

from __future__ import annotations

# Field 1, wire type 2 (length-delimited): (1 << 3) | 2.
_FIELD_ONE = b"\x0a"


def _varint(value: int) -> bytes:
    """`value` as a base-128 varint, least significant group first."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def response_bytes(answers: list[bytes]) -> bytes:
    """The serialized response carrying `answers` (serialized messages) as
    field 1, in order: one for GetAvailability, any number for the batch."""
    return b"".join(_FIELD_ONE + _varint(len(answer)) + answer for answer in answers)
