"""A thin test client for the availability service, and waiting helpers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeVar, cast

import asyncpg
import grpc

from holdfast.contracts.availability.v1 import availability_pb2, availability_pb2_grpc
from holdfast.platform.proto_time import time_range
from holdfast.platform.streams import AVAILABILITY_TOPIC, stream_key, stream_position
from tests.support.booking import BASE_TIME

if TYPE_CHECKING:
    from services.availability.server import AvailabilityApp

T = TypeVar("T")

# Long enough for every slot the booking helpers create.
WINDOW = (BASE_TIME - timedelta(days=1), BASE_TIME + timedelta(days=30))


@dataclass(frozen=True)
class SlotCounts:
    """What a test compares: a slot's numbers as the service reports them."""

    capacity: int
    available: int
    held: int
    booked: int
    open: bool


def counts(slot: availability_pb2.SlotAvailability) -> SlotCounts:
    return SlotCounts(slot.capacity, slot.available, slot.held, slot.booked, slot.open)


@dataclass
class AvailabilityClient:
    stub: availability_pb2_grpc.AvailabilityServiceAsyncStub
    tenant: str

    @classmethod
    def on(cls, channel: grpc.aio.Channel, tenant: str) -> AvailabilityClient:
        stub = cast(
            "availability_pb2_grpc.AvailabilityServiceAsyncStub",
            availability_pb2_grpc.AvailabilityServiceStub(channel),
        )
        return cls(stub, tenant)

    @property
    def md(self) -> tuple[tuple[str, str], ...]:
        return (("x-tenant-id", self.tenant),)

    async def get(
        self, resource_id: str, start: datetime = WINDOW[0], end: datetime = WINDOW[1]
    ) -> availability_pb2.ResourceAvailability:
        response = await self.stub.GetAvailability(
            availability_pb2.GetAvailabilityRequest(
                resource_id=resource_id, time_range=time_range(start, end)
            ),
            metadata=self.md,
        )
        answer: availability_pb2.ResourceAvailability = response.availability
        return answer

    async def slot_counts(self, resource_id: str) -> dict[str, SlotCounts]:
        answer = await self.get(resource_id)
        return {slot.slot_id: counts(slot) for slot in answer.slots}

    async def batch(
        self, resource_ids: list[str], start: datetime = WINDOW[0], end: datetime = WINDOW[1]
    ) -> list[availability_pb2.ResourceAvailability]:
        response = await self.stub.BatchGetAvailability(
            availability_pb2.BatchGetAvailabilityRequest(
                resource_ids=resource_ids, time_range=time_range(start, end)
            ),
            metadata=self.md,
        )
        return list(response.availabilities)


async def eventually(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool],
    within: float = 5.0,
    interval: float = 0.02,
) -> T:
    """Polls `probe` until `accept` holds for its result; fails with the last one.

    The deadline only bounds how long a broken system is waited for; what is
    asserted is the value.
    """
    loop = asyncio.get_running_loop()
    end = loop.time() + within
    while True:
        value = await probe()
        if accept(value):
            return value
        if loop.time() > end:
            raise AssertionError(f"still {value!r} after {within}s")
        await asyncio.sleep(interval)


async def settled(app: AvailabilityApp, db: asyncpg.Pool, tenant: str) -> None:
    """Returns once the tenant's changes so far are published and `app` has
    applied them: after this, no invalidation for them is still in flight."""

    async def pending() -> int:
        count: int = await db.fetchval(
            "SELECT count(*) FROM outbox WHERE tenant_id = $1 AND published_at IS NULL", tenant
        )
        return count

    await eventually(pending, lambda n: n == 0)
    assert app.consumer is not None
    consumer = app.consumer
    newest = await app.stream_redis.xrevrange(stream_key(app.settings, AVAILABILITY_TOPIC), count=1)
    newest_id: str | bytes = newest[0][0] if newest else "0-0"  # type: ignore[assignment]

    async def applied() -> str:
        return consumer.last_id

    await eventually(applied, lambda last: stream_position(last) >= stream_position(newest_id))


async def wait_until_live(app: AvailabilityApp, within: float = 10.0) -> None:
    async def is_live() -> bool:
        return app.consumer is not None and app.consumer.live

    await eventually(is_live, bool, within)
