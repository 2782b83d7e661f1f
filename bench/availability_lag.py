"""The invalidation lag of `bench.availability`: hold, warm, confirm, and
time until the booking shows, round after round."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

import grpc

from bench.availability_client import AvailabilityClient
from bench.availability_options import Options
from bench.grpc_load import (
    BASE_TIME,
    CALL_TIMEOUT_SECONDS,
    outcome_of_status,
)
from bench.metrics import Metrics, ServiceLag
from bench.stats import Latencies
from holdfast.contracts.availability.v1 import availability_pb2
from holdfast.contracts.booking.v1 import booking_pb2, booking_pb2_grpc
from holdfast.platform.context import TENANT_ID_KEY
from holdfast.platform.grpc_errors import details_of

LAG_P99_TARGET_MS = 10.0


@dataclass
class LagResult:
    capacity: int
    lags: list[float] = field(default_factory=list)
    # How long the call that first showed the booking took (it is a cache miss).
    seen_calls: list[float] = field(default_factory=list)
    polls: list[int] = field(default_factory=list)
    # Rounds in which a wrong answer came, or the booking never showed.
    wrong: list[str] = field(default_factory=list)
    poll_errors: Counter[str] = field(default_factory=Counter)
    service: ServiceLag | None = None

    def figures(self) -> dict[str, Any]:
        lat = Latencies.of(self.lags)
        polls = sorted(self.polls)
        return {
            "rounds": len(self.lags) + len(self.wrong),
            "seen": len(self.lags),
            "wrong": self.wrong,
            "poll_errors": dict(self.poll_errors),
            **{k: round(v, 3) for k, v in asdict(lat).items()},
            "seen_call_p50_ms": round(Latencies.of(self.seen_calls).p50_ms, 3),
            "polls_p50": polls[len(polls) // 2] if polls else None,
            "target_met": bool(self.lags) and not self.wrong and lat.p99_ms < LAG_P99_TARGET_MS,
            "service": asdict(self.service) if self.service else None,
        }


class LagRounds:
    """Hold, warm, confirm, and time until the booking shows, round after round."""

    def __init__(
        self,
        booking: booking_pb2_grpc.BookingServiceStub,
        availability: AvailabilityClient,
        tenant: str,
        resource_id: str,
        slot_id: str,
        capacity: int,
        options: Options,
    ) -> None:
        self.booking = booking
        self.availability = availability
        self.metadata = ((TENANT_ID_KEY, tenant),)
        self.resource_id = resource_id
        self.slot_id = slot_id
        self.window = (BASE_TIME, BASE_TIME + timedelta(hours=1))
        self.options = options
        self.result = LagResult(capacity)

    async def slot(self) -> availability_pb2.SlotAvailability:
        answer = await self.availability.get(self.resource_id, *self.window)
        [slot] = answer.slots
        return slot

    async def until(
        self, accept: Callable[[availability_pb2.SlotAvailability], bool], since: float
    ) -> tuple[availability_pb2.SlotAvailability, float, float, int] | None:
        """Polls until `accept` holds: (that slot, when its call was sent, when
        it was answered, polls so far), or None after --lag-timeout. Errors are
        counted and polled through."""
        interval = self.options.lag_poll_ms / 1000
        deadline = since + self.options.lag_timeout
        polls = 0
        while True:
            sent = time.perf_counter()
            polls += 1
            try:
                slot = await self.slot()
            except grpc.aio.AioRpcError as error:
                details = details_of(error)
                self.result.poll_errors[outcome_of_status(details.code, details.reason)] += 1
            else:
                answered = time.perf_counter()
                if accept(slot):
                    return slot, sent, answered, polls
            now = time.perf_counter()
            if now > deadline:
                return None
            if sent + interval > now:
                await asyncio.sleep(sent + interval - now)

    async def round(self, booked: int) -> None:
        capacity = self.result.capacity
        hold = await self.booking.CreateHold(
            booking_pb2.CreateHoldRequest(
                resource_id=self.resource_id,
                slot_ids=[self.slot_id],
                quantity=1,
                customer_ref="bench",
            ),
            metadata=self.metadata,
            timeout=CALL_TIMEOUT_SECONDS,
        )
        # Warm: the answer shows the hold, then settles (so the hold's own
        # invalidation is no longer in flight) and is read again from the cache.
        held = await self.until(lambda s: s.held == 1 and s.booked == booked, time.perf_counter())
        if held is None:
            self.result.wrong.append(f"round {booked}: the hold never showed")
            return
        await asyncio.sleep(self.options.lag_settle_ms / 1000)
        before = await self.slot()
        if (before.held, before.booked) != (1, booked):
            self.result.wrong.append(f"round {booked}: held/booked {before.held}/{before.booked}")
            return

        await self.booking.ConfirmHold(
            booking_pb2.ConfirmHoldRequest(hold_id=hold.hold.hold_id, payment_ref="bench"),
            metadata=self.metadata,
            timeout=CALL_TIMEOUT_SECONDS,
        )
        committed = time.perf_counter()
        seen = await self.until(lambda s: s.booked != booked or s.held != 1, committed)
        if seen is None:
            self.result.wrong.append(f"round {booked}: the booking never showed")
            return
        slot, sent, answered, polls = seen
        expected = (capacity, capacity - booked - 1, 0, booked + 1, True)
        got = (slot.capacity, slot.available, slot.held, slot.booked, slot.open)
        if got != expected:
            self.result.wrong.append(f"round {booked}: {got}, expected {expected}")
            return
        self.result.lags.append(answered - committed)
        self.result.seen_calls.append(answered - sent)
        self.result.polls.append(polls)

    async def run(self, metrics: Metrics) -> LagResult:
        before = await metrics.read()
        for booked in range(self.options.lag_rounds):
            await self.round(booked)
        if metrics.url:
            self.result.service = ServiceLag.of(Metrics.delta(before, await metrics.read()))
        return self.result
