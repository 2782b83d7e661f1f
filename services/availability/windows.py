"""Availability of a windowed resource (tables, rooms, rentals): the start
times a party can book for a duration, and each fitting unit's free
intervals, over a range of local dates.

The inputs (rules, hours, active units, busy windows) come through the same
caches as slot answers, kept exact by the same change messages (see
`services.availability.window_inputs` for why the inputs and not the answers
are cached); the answer is computed per request by
`holdfast.scheduling.starts` at the request's own "now", so no start that
has slipped inside the lead time is ever offered from a cache.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta

from google.protobuf.duration_pb2 import Duration

from holdfast.contracts.availability.v1 import availability_pb2
from holdfast.platform.proto_time import time_range, timestamp
from holdfast.scheduling.intervals import Interval
from holdfast.scheduling.rules import buffered
from holdfast.scheduling.starts import best_unit, bookable_starts, free_intervals
from services.availability.cache import LocalCache, SharedCache
from services.availability.metrics import AvailabilityMetrics
from services.availability.reader import AnswerKind, CachedAnswers
from services.availability.window_inputs import WindowInputs, span_key
from services.availability.window_repository import WindowRepository

WindowAvailability = availability_pb2.WindowAvailability


class WindowReader:
    """Window inputs through the caches (local, Redis, Postgres)."""

    def __init__(
        self,
        repository: WindowRepository,
        shared: SharedCache,
        local: LocalCache,
        metrics: AvailabilityMetrics,
        cache_live: Callable[[], bool],
    ) -> None:
        self._repository = repository
        self._cached = CachedAnswers(shared, local, metrics, cache_live)

    async def inputs(
        self,
        tenant_id: str,
        resource_id: uuid.UUID,
        first: date,
        last: date,
        *,
        fresh: bool = False,
    ) -> WindowInputs:
        """What the resource's availability on `first` to `last` is computed
        from; NOT_FOUND or FAILED_PRECONDITION (not windowed) from Postgres."""

        async def load(ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, WindowInputs]:
            return {r: await self._repository.read_inputs(tenant_id, r, first, last) for r in ids}

        kind = AnswerKind(
            span_key(first, last),
            load,
            WindowInputs.from_bytes,
            WindowInputs.to_bytes,
            WindowInputs,
        )
        [inputs] = await self._cached.read(tenant_id, [resource_id], kind, fresh=fresh)
        return inputs


def window_availability(
    resource_id: uuid.UUID,
    inputs: WindowInputs,
    first: date,
    last: date,
    party_size: int,
    duration: timedelta,
    now: datetime,
) -> WindowAvailability:
    """The answer at `now`: the bookable starts, each with the unit a hold
    would get now, and the free intervals of every unit the party fits."""
    rules, hours, units, busy = inputs.rules, inputs.hours, inputs.units, inputs.busy
    starts = []
    for start in bookable_starts(rules, hours, first, last, duration, party_size, units, busy, now):
        guarded = buffered(Interval(start, start + duration), rules)
        unit = best_unit(units, party_size, busy, guarded)
        assert unit is not None  # bookable_starts found it free
        starts.append(
            availability_pb2.BookableStart(
                start_time=timestamp(start), unit_id=str(inputs.unit_ids[unit.name])
            )
        )
    sizes = {unit.name: unit.size for unit in units}
    free = free_intervals(hours, first, last, units, busy, party_size)
    answer_duration = Duration()
    answer_duration.FromTimedelta(duration)
    return WindowAvailability(
        resource_id=str(resource_id),
        time_zone=inputs.time_zone,
        first_date=first.isoformat(),
        last_date=last.isoformat(),
        party_size=party_size,
        duration=answer_duration,
        starts=starts,
        units=[
            availability_pb2.UnitAvailability(
                unit_id=str(inputs.unit_ids[name]),
                name=name,
                size=sizes[name],
                free=[time_range(piece.start, piece.end) for piece in pieces],
            )
            for name, pieces in free.items()
        ],
    )
