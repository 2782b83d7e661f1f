"""What the gRPC benchmarks share: channels to a service for one tenant, the
booking client that makes resources, slots and holds, the outcome of a call,
and the two ways of firing a batch of holds (all at once, or kept busy)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration

from bench.stats import Latencies
from holdfast.contracts.booking.v1 import (
    booking_pb2,
    booking_pb2_grpc,
    inventory_pb2,
    inventory_pb2_grpc,
)
from holdfast.contracts.common.v1 import money_pb2
from holdfast.platform.context import TENANT_ID_KEY
from holdfast.platform.grpc_errors import details_of
from holdfast.platform.proto_time import time_range

OK = "OK"
SOLD_OUT = "SOLD_OUT"
CALL_TIMEOUT_SECONDS = 30.0
CONNECT_TIMEOUT_SECONDS = 5.0
# Far in the future so bench slots never collide with anything a person made.
BASE_TIME = datetime(2041, 1, 1, tzinfo=UTC)
SLOTS_PER_CREATE = 500
HoldCall = Callable[[int], Awaitable[str]]


def outcome_of_status(code: grpc.StatusCode, reason: str) -> str:
    """One label per kind of answer: OK, SOLD_OUT, or CODE/REASON for the rest."""
    if code is grpc.StatusCode.FAILED_PRECONDITION and reason == SOLD_OUT:
        return SOLD_OUT
    return f"{code.name}/{reason or '-'}"


@dataclass
class Phase:
    """What one batch of holds produced."""

    label: str
    latencies: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    wall_seconds: float = 0.0
    client_cpu_seconds: float = 0.0
    # Holds/s of each round a merged phase came from.
    rounds: list[float] = field(default_factory=list)

    @property
    def ok(self) -> int:
        return self.outcomes[OK]

    @property
    def sold_out(self) -> int:
        return self.outcomes[SOLD_OUT]

    @property
    def others(self) -> dict[str, int]:
        return {k: v for k, v in sorted(self.outcomes.items()) if k not in (OK, SOLD_OUT)}

    @property
    def throughput(self) -> float:
        """Successful holds per second of wall time."""
        return self.ok / self.wall_seconds if self.wall_seconds else 0.0

    @classmethod
    def merge(cls, label: str, phases: Sequence[Phase]) -> Phase:
        """One phase out of several rounds: their calls, and their times added."""
        merged = cls(label)
        for phase in phases:
            merged.latencies.extend(phase.latencies)
            merged.outcomes.update(phase.outcomes)
            merged.wall_seconds += phase.wall_seconds
            merged.client_cpu_seconds += phase.client_cpu_seconds
        merged.rounds = [round(p.throughput, 1) for p in phases]
        return merged

    def figures(self) -> dict[str, Any]:
        return {
            "requests": len(self.latencies),
            "ok": self.ok,
            "sold_out": self.sold_out,
            "other_errors": self.others,
            "wall_s": round(self.wall_seconds, 4),
            "holds_per_s": round(self.throughput, 1),
            "client_cpu_s": round(self.client_cpu_seconds, 3),
            "rounds_holds_per_s": self.rounds,
            **{k: round(v, 2) for k, v in asdict(Latencies.of(self.latencies)).items()},
        }


class Channels:
    """Several channels to one service, calling for one tenant.

    Each channel gets its own subchannel pool, hence its own TCP connection:
    gRPC would otherwise share one HTTP/2 connection between channels to the
    same target, and that one connection would become the bottleneck.
    """

    def __init__(self, target: str, tenant: str, channels: int) -> None:
        self.tenant = tenant
        self.metadata = ((TENANT_ID_KEY, tenant),)
        self._channels = [
            grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
            for _ in range(channels)
        ]

    async def connect(self) -> None:
        await asyncio.wait_for(
            asyncio.gather(*(c.channel_ready() for c in self._channels)),
            CONNECT_TIMEOUT_SECONDS,
        )

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self._channels))


class ServiceClient(Channels):
    """Booking and inventory stubs over several channels for one tenant."""

    def __init__(self, target: str, tenant: str, channels: int) -> None:
        super().__init__(target, tenant, channels)
        self._booking = [booking_pb2_grpc.BookingServiceStub(c) for c in self._channels]
        self._inventory = inventory_pb2_grpc.InventoryServiceStub(self._channels[0])

    async def resource(self, capacity: int) -> str:
        response = await self._inventory.CreateResource(
            inventory_pb2.CreateResourceRequest(
                name="bench",
                time_zone="UTC",
                price=money_pb2.Money(currency_code="EUR", amount_minor=1000),
                default_capacity=capacity,
            ),
            metadata=self.metadata,
            timeout=CALL_TIMEOUT_SECONDS,
        )
        resource_id: str = response.resource.resource_id
        return resource_id

    async def slots(self, resource_id: str, count: int, capacity: int) -> list[str]:
        """`count` consecutive one-hour slots; several calls when they are many."""
        ids: list[str] = []
        for first in range(0, count, SLOTS_PER_CREATE):
            hours = range(first, min(count, first + SLOTS_PER_CREATE))
            response = await self._inventory.CreateSlots(
                inventory_pb2.CreateSlotsRequest(
                    resource_id=resource_id,
                    slots=[
                        inventory_pb2.SlotSpec(
                            time_range=time_range(
                                BASE_TIME + timedelta(hours=h), BASE_TIME + timedelta(hours=h + 1)
                            ),
                            capacity=capacity,
                        )
                        for h in hours
                    ],
                ),
                metadata=self.metadata,
                timeout=CALL_TIMEOUT_SECONDS,
            )
            ids.extend(s.slot_id for s in response.slots)
        return ids

    def holder(
        self, resource_id: str, slot_ids: Sequence[str], ttl: Duration | None = None
    ) -> HoldCall:
        """A call that holds one unit of slot `i mod len(slot_ids)` on channel
        `i mod n`, for `ttl` (the service's default if None)."""
        requests = [
            booking_pb2.CreateHoldRequest(
                resource_id=resource_id,
                slot_ids=[slot_id],
                quantity=1,
                customer_ref="bench",
                ttl=ttl,
            )
            for slot_id in slot_ids
        ]
        stubs = self._booking

        async def hold(i: int) -> str:
            try:
                await stubs[i % len(stubs)].CreateHold(
                    requests[i % len(requests)],
                    metadata=self.metadata,
                    timeout=CALL_TIMEOUT_SECONDS,
                )
            except grpc.aio.AioRpcError as error:
                details = details_of(error)
                return outcome_of_status(details.code, details.reason)
            return OK

        return hold


async def fire_at_once(label: str, call: HoldCall, count: int) -> Phase:
    """`count` calls started together; wall time runs until the last answer."""
    phase = Phase(label)
    ends: list[float] = []

    async def one(i: int) -> None:
        started = time.perf_counter()
        outcome = await call(i)
        ended = time.perf_counter()
        phase.latencies.append(ended - started)
        phase.outcomes[outcome] += 1
        ends.append(ended)

    cpu = time.process_time()
    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    phase.wall_seconds = max(ends) - start
    phase.client_cpu_seconds = time.process_time() - cpu
    return phase


async def keep_busy(
    label: str, call: HoldCall, concurrency: int, requests: int, seconds: float | None
) -> Phase:
    """`concurrency` workers calling back to back, for `requests` calls in all
    or, when `seconds` is given, until that much time has passed."""
    phase = Phase(label)
    next_index = 0
    deadline: float | None = None

    async def worker() -> None:
        nonlocal next_index
        while True:
            if deadline is not None:
                if time.perf_counter() >= deadline:
                    return
            elif next_index >= requests:
                return
            i, next_index = next_index, next_index + 1
            started = time.perf_counter()
            outcome = await call(i)
            phase.latencies.append(time.perf_counter() - started)
            phase.outcomes[outcome] += 1

    cpu = time.process_time()
    start = time.perf_counter()
    if seconds:
        deadline = start + seconds
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    phase.wall_seconds = time.perf_counter() - start
    phase.client_cpu_seconds = time.process_time() - cpu
    return phase


def phase_figures(phase: Phase, levels: dict[str, int] | None = None) -> dict[str, Any]:
    errors = {k: v for k, v in sorted(phase.outcomes.items()) if k != OK}
    figures: dict[str, Any] = {
        "requests": len(phase.latencies),
        "ok": phase.ok,
        "errors": errors,
        "wall_s": round(phase.wall_seconds, 4),
        "per_s": round(phase.throughput, 1),
        "client_cpu_s": round(phase.client_cpu_seconds, 3),
        "rounds_per_s": phase.rounds,
        **{k: round(v, 3) for k, v in asdict(Latencies.of(phase.latencies)).items()},
    }
    if levels is not None:
        figures["service_answers"] = levels
    return figures
