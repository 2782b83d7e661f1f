"""The availability service as `bench.availability` calls it, and the raw
Redis GET it is compared with."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bench.availability_options import Options
from bench.grpc_load import (
    CALL_TIMEOUT_SECONDS,
    OK,
    Channels,
    HoldCall,
    Phase,
    keep_busy,
    outcome_of_status,
)
from bench.metrics import Metrics, Samples
from holdfast.contracts.availability.v1 import availability_pb2, availability_pb2_grpc
from holdfast.platform.grpc_errors import details_of
from holdfast.platform.proto_time import time_range
from services.availability.server import CACHE_HEALTH

WRONG = "WRONG"
# As in bench.holds: call number i, and how it went (OK, WRONG or CODE/REASON).
Call = HoldCall
ResourceAvailability = availability_pb2.ResourceAvailability


class AvailabilityClient(Channels):
    """Availability stubs over several channels for one tenant."""

    def __init__(self, target: str, tenant: str, channels: int) -> None:
        super().__init__(target, tenant, channels)
        self._stubs = [availability_pb2_grpc.AvailabilityServiceStub(c) for c in self._channels]
        self._health = health_pb2_grpc.HealthStub(self._channels[0])

    async def wait_until_cache_live(self, within: float) -> bool:
        """True once the service answers from its caches (its consumer is live);
        while degraded every answer comes from Postgres and hits are not hits."""
        request = health_pb2.HealthCheckRequest(service=CACHE_HEALTH)
        deadline = time.monotonic() + within
        while True:
            response = await self._health.Check(request, timeout=CALL_TIMEOUT_SECONDS)
            if response.status == health_pb2.HealthCheckResponse.SERVING:
                return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.1)

    async def get(
        self, resource_id: str, start: datetime, end: datetime, channel: int = 0
    ) -> ResourceAvailability:
        response = await self._stubs[channel % len(self._stubs)].GetAvailability(
            availability_pb2.GetAvailabilityRequest(
                resource_id=resource_id, time_range=time_range(start, end)
            ),
            metadata=self.metadata,
            timeout=CALL_TIMEOUT_SECONDS,
        )
        answer: ResourceAvailability = response.availability
        return answer

    def reader(
        self,
        resource_id: str,
        window: Callable[[int], tuple[datetime, datetime]],
        correct: Callable[[ResourceAvailability], bool],
    ) -> Call:
        """A call that asks for `window(i)` on channel `i mod n` and says
        OK, WRONG (the answer failed `correct`) or CODE/REASON."""

        async def read(i: int) -> str:
            try:
                answer = await self.get(resource_id, *window(i), channel=i)
            except grpc.aio.AioRpcError as error:
                details = details_of(error)
                return outcome_of_status(details.code, details.reason)
            return OK if correct(answer) else WRONG

        return read


def redis_getter(redis: Redis, key: str, value: bytes) -> Call:
    async def get(i: int) -> str:
        try:
            found = await redis.get(key)
        except RedisError as error:
            return f"REDIS/{type(error).__name__}"
        return OK if found == value else WRONG

    return get


@dataclass
class Measured:
    """A phase over all its rounds, with what the service counted meanwhile."""

    phase: Phase
    service: Samples = field(default_factory=dict)

    @property
    def wrong(self) -> int:
        return self.phase.outcomes[WRONG]


async def run_rounds(
    calls: dict[str, Call], metrics: Metrics, options: Options
) -> dict[str, Measured]:
    """Every call for `options.rounds` rounds, in order then reversed, and so on."""
    rounds: dict[str, list[Phase]] = {label: [] for label in calls}
    service: dict[str, Counter[str]] = {label: Counter() for label in calls}
    for r in range(options.rounds):
        for label in list(calls) if r % 2 == 0 else reversed(list(calls)):
            before = await metrics.read()
            phase = await keep_busy(
                label, calls[label], options.concurrency, options.requests, options.seconds
            )
            service[label].update(Metrics.delta(before, await metrics.read()))
            rounds[label].append(phase)
    return {
        label: Measured(Phase.merge(label, phases), dict(service[label]))
        for label, phases in rounds.items()
    }
