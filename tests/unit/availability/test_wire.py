"""Responses framed around cached answers are the bytes protobuf itself
would send, and read back as the same messages."""

from __future__ import annotations

import pytest

from holdfast.contracts.availability.v1 import availability_pb2 as pb
from services.availability.wire import response_bytes


def _answer(slots: int) -> pb.ResourceAvailability:
    return pb.ResourceAvailability(
        resource_id="7d0f6f6e-1111-4a4a-9b9b-000000000001",
        slots=[
            pb.SlotAvailability(slot_id=f"s{i}", capacity=10, available=i) for i in range(slots)
        ],
    )


# From an empty answer to ones whose length needs one, two and three varint bytes.
SIZES = [0, 1, 5, 6, 600, 9000]


@pytest.mark.parametrize("slots", SIZES)
def test_a_single_answer_is_the_get_response_protobuf_makes(slots: int) -> None:
    answer = _answer(slots)
    framed = response_bytes([answer.SerializeToString()])
    assert framed == pb.GetAvailabilityResponse(availability=answer).SerializeToString()
    assert pb.GetAvailabilityResponse.FromString(framed).availability == answer


def test_several_answers_are_the_batch_response_in_order() -> None:
    answers = [_answer(n) for n in SIZES]
    framed = response_bytes([a.SerializeToString() for a in answers])
    expected = pb.BatchGetAvailabilityResponse(availabilities=answers)
    assert framed == expected.SerializeToString()
    assert list(pb.BatchGetAvailabilityResponse.FromString(framed).availabilities) == answers
