"""The availability service as `bench.availability` calls it in-process
(setup, misses, lag), and its alternating rounds of phases."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.grpc_load import (
    CALL_TIMEOUT_SECONDS,
    OK,
    Channels,
    HoldCall,
    Phase,
    outcome_of_status,
)
from bench.metrics import Metrics, Samples
from bench.processes import cpu_seconds
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


@dataclass
class Measured:
    """A phase over all its rounds, the server's CPU time meanwhile (None when
    its process is not known), and what the service counted meanwhile."""

    phase: Phase
    server_cpu_seconds: float | None = None
    service: Samples = field(default_factory=dict)

    @property
    def wrong(self) -> int:
        return self.phase.outcomes[WRONG]

    @property
    def server_cpu_ms_per_call(self) -> float | None:
        calls = len(self.phase.latencies)
        if self.server_cpu_seconds is None or not calls:
            return None
        return self.server_cpu_seconds / calls * 1000


@dataclass(frozen=True)
class PhaseRunner:
    """How to run one round of a phase, and the pid of the server it loads."""

    run: Callable[[], Awaitable[Phase]]
    server_pid: int | None


async def run_rounds(
    phases: dict[str, PhaseRunner], metrics: Metrics, rounds: int
) -> dict[str, Measured]:
    """Every phase for `rounds` rounds, in order then reversed, and so on."""
    done: dict[str, list[Phase]] = {label: [] for label in phases}
    service: dict[str, Counter[str]] = {label: Counter() for label in phases}
    cpu: dict[str, float | None] = {label: 0.0 for label in phases}
    for r in range(rounds):
        for label in list(phases) if r % 2 == 0 else reversed(list(phases)):
            runner = phases[label]
            pids = [runner.server_pid] if runner.server_pid else []
            before, cpu_before = await metrics.read(), cpu_seconds(pids) if pids else None
            done[label].append(await runner.run())
            cpu_after = cpu_seconds(pids) if pids else None
            service[label].update(Metrics.delta(before, await metrics.read()))
            used = cpu[label]
            if used is None or cpu_before is None or cpu_after is None:
                cpu[label] = None
            else:
                cpu[label] = used + cpu_after - cpu_before
    return {
        label: Measured(Phase.merge(label, p), cpu[label], dict(service[label]))
        for label, p in done.items()
    }
