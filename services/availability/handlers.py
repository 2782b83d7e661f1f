"""gRPC handlers: validate, convert, and ask the readers.

GetAvailability and BatchGetAvailability answer their response's bytes (see
services.availability.wire), registered without a response serializer
(`method_handlers`); GetWindowAvailability answers a message as usual.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import grpc

from holdfast.contracts.availability.v1 import availability_pb2
from holdfast.contracts.common.v1 import time_range_pb2
from holdfast.platform.context import current_tenant
from holdfast.platform.proto_time import checked_time_range
from holdfast.platform.streams import stream_position
from holdfast.platform.validation import Violations
from services.availability.config import AvailabilitySettings
from services.availability.reader import AvailabilityReader
from services.availability.windows import WindowReader, window_availability
from services.availability.wire import response_bytes

_CHANGE_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Dates whose windows the schema can store (guards are epoch seconds below 2^32).
_DATES = (date(1971, 1, 1), date(2105, 12, 31))
_MINUTE = timedelta(minutes=1)


class AvailabilityHandler:
    def __init__(
        self,
        reader: AvailabilityReader,
        windows: WindowReader,
        settings: AvailabilitySettings,
        applied_change_id: Callable[[], str],
    ) -> None:
        self._reader = reader
        self._windows = windows
        # The newest change message this replica's caches have applied.
        self._applied = applied_change_id
        self._max_range = timedelta(days=settings.max_range_days)
        self._max_batch = settings.max_batch_resources

    def _window(
        self, v: Violations, message: time_range_pb2.TimeRange
    ) -> tuple[datetime, datetime] | None:
        window = checked_time_range(v, "time_range", message)
        if window is not None and window[1] - window[0] > self._max_range:
            v.add("time_range", f"must span at most {self._max_range.days} days")
            return None
        return window

    async def GetAvailability(
        self,
        request: availability_pb2.GetAvailabilityRequest,
        context: grpc.aio.ServicerContext,
    ) -> bytes:
        """A serialized GetAvailabilityResponse."""
        tenant = current_tenant()
        v = Violations()
        resource_id = v.uuid("resource_id", request.resource_id)
        window = self._window(v, request.time_range)
        fresh = self._fresh(v, request.min_change_id)
        v.raise_if_any()
        assert resource_id is not None
        assert window is not None
        answers = await self._reader.read_serialized(tenant, [resource_id], *window, fresh=fresh)
        return response_bytes(answers)

    def _fresh(self, v: Violations, wanted: str) -> bool:
        """Whether the answer must come from Postgres: `wanted` (min_change_id)
        names a change this replica's caches have not applied yet."""
        if not wanted:
            return False
        if not _CHANGE_ID.match(wanted):
            v.add("min_change_id", "must be a stream entry id such as 1700000000000-0")
            return False
        applied = self._applied()
        return not applied or stream_position(applied) < stream_position(wanted)

    def _dates(self, v: Violations, first_text: str, last_text: str) -> tuple[date, date] | None:
        first = _date(v, "first_date", first_text)
        last = _date(v, "last_date", last_text)
        if first is None or last is None:
            return None
        if last < first:
            v.add("last_date", "must not be before first_date")
            return None
        if (last - first).days + 1 > self._max_range.days:
            v.add("last_date", f"must be at most {self._max_range.days} days from first_date")
            return None
        return first, last

    async def GetWindowAvailability(
        self,
        request: availability_pb2.GetWindowAvailabilityRequest,
        context: grpc.aio.ServicerContext,
    ) -> availability_pb2.GetWindowAvailabilityResponse:
        tenant = current_tenant()
        v = Violations()
        resource_id = v.uuid("resource_id", request.resource_id)
        dates = self._dates(v, request.first_date, request.last_date)
        if request.party_size < 1:
            v.add("party_size", "must be at least 1")
        duration = _duration(v, request) if request.HasField("duration") else None
        fresh = self._fresh(v, request.min_change_id)
        v.raise_if_any()
        assert resource_id is not None
        assert dates is not None
        inputs = await self._windows.inputs(tenant, resource_id, *dates, fresh=fresh)
        rules = inputs.rules
        if duration is None:
            duration = rules.min_duration
        elif not rules.min_duration <= duration <= rules.max_duration:
            v.add(
                "duration",
                f"must be between {rules.min_duration // _MINUTE} and"
                f" {rules.max_duration // _MINUTE} minutes",
            )
            v.raise_if_any()
        now = datetime.now(UTC)
        answer = window_availability(resource_id, inputs, *dates, request.party_size, duration, now)
        return availability_pb2.GetWindowAvailabilityResponse(availability=answer)

    async def BatchGetAvailability(
        self,
        request: availability_pb2.BatchGetAvailabilityRequest,
        context: grpc.aio.ServicerContext,
    ) -> bytes:
        """A serialized BatchGetAvailabilityResponse."""
        tenant = current_tenant()
        v = Violations()
        if not request.resource_ids:
            v.add("resource_ids", "is required")
        elif len(request.resource_ids) > self._max_batch:
            v.add("resource_ids", f"must hold at most {self._max_batch} ids")
        resource_ids: list[uuid.UUID] = []
        for i, value in enumerate(request.resource_ids[: self._max_batch]):
            parsed = v.uuid(f"resource_ids[{i}]", value)
            if parsed is None:
                continue
            if parsed in resource_ids:
                v.add(f"resource_ids[{i}]", "repeats an earlier id")
            resource_ids.append(parsed)
        window = self._window(v, request.time_range)
        v.raise_if_any()
        assert window is not None
        return response_bytes(await self._reader.read_serialized(tenant, resource_ids, *window))


def method_handlers(handler: AvailabilityHandler) -> dict[str, grpc.RpcMethodHandler]:
    """The service's methods, as the generated registration makes them except
    that the two answering bytes have no response serializer."""
    pb = availability_pb2
    return {
        "GetAvailability": grpc.unary_unary_rpc_method_handler(
            handler.GetAvailability, request_deserializer=pb.GetAvailabilityRequest.FromString
        ),
        "BatchGetAvailability": grpc.unary_unary_rpc_method_handler(
            handler.BatchGetAvailability,
            request_deserializer=pb.BatchGetAvailabilityRequest.FromString,
        ),
        "GetWindowAvailability": grpc.unary_unary_rpc_method_handler(
            handler.GetWindowAvailability,
            request_deserializer=pb.GetWindowAvailabilityRequest.FromString,
            response_serializer=pb.GetWindowAvailabilityResponse.SerializeToString,
        ),
    }


def _date(v: Violations, field: str, text: str) -> date | None:
    if not text:
        v.add(field, "is required")
        return None
    try:
        if not _DATE.match(text):
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError:
        v.add(field, "must be a date such as 2031-06-01")
        return None
    if not _DATES[0] <= day <= _DATES[1]:
        v.add(field, f"must be between {_DATES[0]} and {_DATES[1]}")
        return None
    return day


def _duration(
    v: Violations, request: availability_pb2.GetWindowAvailabilityRequest
) -> timedelta | None:
    duration = request.duration
    if duration.nanos or duration.seconds <= 0 or duration.seconds % 60:
        v.add("duration", "must be a positive whole number of minutes")
        return None
    return timedelta(seconds=duration.seconds)
