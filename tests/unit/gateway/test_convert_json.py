"""The availability answer's JSON, written straight from the protobuf, is
byte for byte what the API model writes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from gateway import convert
from holdfast.contracts.availability.v1 import availability_pb2
from holdfast.platform.proto_time import time_range


def _answer() -> availability_pb2.ResourceAvailability:
    start = datetime(2031, 6, 1, 9, tzinfo=UTC)
    answer = availability_pb2.ResourceAvailability(
        resource_id=str(uuid.uuid4()),
        time_range=time_range(start, datetime(2031, 6, 2, tzinfo=UTC)),
    )
    for n, (begin, end) in enumerate(
        [
            (start, datetime(2031, 6, 1, 10, tzinfo=UTC)),
            # Fractions of a second are kept, as the model writes them.
            (
                datetime(2031, 6, 1, 10, 0, 0, 250_000, tzinfo=UTC),
                datetime(9999, 12, 31, tzinfo=UTC),
            ),
        ]
    ):
        slot = answer.slots.add(
            slot_id=str(uuid.uuid4()),
            capacity=10,
            available=7 - n,
            held=2,
            booked=1 + n,
            open=n == 0,
        )
        slot.start_time.FromDatetime(begin)
        slot.end_time.FromDatetime(end)
    return answer


def test_the_fast_json_is_the_models_json() -> None:
    answer = _answer()

    assert convert.availability_json(answer) == (
        convert.availability(answer).model_dump_json().encode()
    )


def test_an_empty_window_too() -> None:
    answer = availability_pb2.ResourceAvailability(resource_id=str(uuid.uuid4()))

    assert convert.availability_json(answer) == (
        convert.availability(answer).model_dump_json().encode()
    )
