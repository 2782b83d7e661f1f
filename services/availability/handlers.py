"""gRPC handlers: validate, convert, and ask the reader."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import grpc

from holdfast.contracts.availability.v1 import availability_pb2, availability_pb2_grpc
from holdfast.contracts.common.v1 import time_range_pb2
from holdfast.platform.context import current_tenant
from holdfast.platform.proto_time import read_time_range
from holdfast.platform.streams import stream_position
from holdfast.platform.validation import Violations
from services.availability.config import AvailabilitySettings
from services.availability.reader import AvailabilityReader

_CHANGE_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


class AvailabilityHandler(availability_pb2_grpc.AvailabilityServiceServicer):
    def __init__(
        self,
        reader: AvailabilityReader,
        settings: AvailabilitySettings,
        applied_change_id: Callable[[], str],
    ) -> None:
        self._reader = reader
        # The newest change message this replica's caches have applied.
        self._applied = applied_change_id
        self._max_range = timedelta(days=settings.max_range_days)
        self._max_batch = settings.max_batch_resources

    def _window(
        self, v: Violations, message: time_range_pb2.TimeRange
    ) -> tuple[datetime, datetime] | None:
        window = v.time_range("time_range", *read_time_range(message))
        if window is not None and window[1] - window[0] > self._max_range:
            v.add("time_range", f"must span at most {self._max_range.days} days")
            return None
        return window

    async def GetAvailability(
        self,
        request: availability_pb2.GetAvailabilityRequest,
        context: grpc.aio.ServicerContext,
    ) -> availability_pb2.GetAvailabilityResponse:
        tenant = current_tenant()
        v = Violations()
        resource_id = v.uuid("resource_id", request.resource_id)
        window = self._window(v, request.time_range)
        wanted = request.min_change_id
        if wanted and not _CHANGE_ID.match(wanted):
            v.add("min_change_id", "must be a stream entry id such as 1700000000000-0")
        v.raise_if_any()
        assert resource_id is not None
        assert window is not None
        applied = self._applied()
        fresh = bool(wanted) and (not applied or stream_position(applied) < stream_position(wanted))
        [answer] = await self._reader.read(tenant, [resource_id], *window, fresh=fresh)
        return availability_pb2.GetAvailabilityResponse(availability=answer)

    async def BatchGetAvailability(
        self,
        request: availability_pb2.BatchGetAvailabilityRequest,
        context: grpc.aio.ServicerContext,
    ) -> availability_pb2.BatchGetAvailabilityResponse:
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
        answers = await self._reader.read(tenant, resource_ids, *window)
        return availability_pb2.BatchGetAvailabilityResponse(availabilities=answers)
