"""The rounds of `bench.stripe_lag`: release a hold whose checkout is open and
time until the release shows, per condition of the fake Stripe (normal,
slow, down); and the availability stream watched for each release's
message."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from redis.asyncio import Redis

from bench.availability_client import AvailabilityClient
from bench.grpc_load import BASE_TIME, CALL_TIMEOUT_SECONDS, ServiceClient
from bench.metrics import Samples, ServiceLag
from bench.stats import Latencies
from bench.stripe_lag_options import Options
from holdfast.contracts.booking.v1 import booking_pb2, booking_pb2_grpc
from holdfast.platform.context import TENANT_ID_KEY

CONDITIONS = ("normal", "slow", "down")
ACTIONS_METRIC = "holdfast_payment_actions_total"


@dataclass
class Condition:
    name: str
    lags: list[float] = field(default_factory=list)
    # Commit -> on the stream, of each release's message.
    stream_lags: list[float] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    service: ServiceLag | None = None
    actions: dict[str, int] = field(default_factory=dict)

    def figures(self) -> dict[str, Any]:
        lat = Latencies.of(self.lags)
        return {
            "rounds": len(self.lags) + len(self.wrong),
            "wrong": self.wrong,
            **{k: round(v, 3) for k, v in asdict(lat).items()},
            "on_stream": {
                k: round(v, 3) for k, v in asdict(Latencies.of(self.stream_lags)).items()
            },
            "service": asdict(self.service) if self.service else None,
            "payment_actions": self.actions,
        }


@dataclass(frozen=True)
class Round:
    slot_id: str
    start: datetime
    hold_id: str
    session_id: str


class LagRounds:
    def __init__(
        self,
        client: ServiceClient,
        booking: booking_pb2_grpc.BookingServiceStub,
        availability: AvailabilityClient,
        resource_id: str,
        options: Options,
    ) -> None:
        self.client = client
        self.booking = booking
        self.availability = availability
        self.metadata = ((TENANT_ID_KEY, client.tenant),)
        self.resource_id = resource_id
        self.options = options

    async def prepare(self, first_hour: int, count: int) -> list[Round]:
        """`count` holds, one per slot, each with an open checkout."""
        slot_ids = await self.client.slots(self.resource_id, first_hour + count, 10)
        rounds = []
        for hour in range(first_hour, first_hour + count):
            hold = await self.booking.CreateHold(
                booking_pb2.CreateHoldRequest(
                    resource_id=self.resource_id,
                    slot_ids=[slot_ids[hour]],
                    quantity=1,
                    customer_ref="bench",
                ),
                metadata=self.metadata,
                timeout=CALL_TIMEOUT_SECONDS,
            )
            checkout = await self.booking.StartCheckout(
                booking_pb2.StartCheckoutRequest(hold_id=hold.hold.hold_id),
                metadata=self.metadata,
                timeout=CALL_TIMEOUT_SECONDS,
            )
            rounds.append(
                Round(
                    slot_ids[hour],
                    BASE_TIME + timedelta(hours=hour),
                    hold.hold.hold_id,
                    checkout.checkout.session_id,
                )
            )
        return rounds

    async def held(self, one: Round) -> int:
        answer = await self.availability.get(
            self.resource_id, one.start, one.start + timedelta(hours=1)
        )
        [slot] = answer.slots
        return slot.held

    async def run(self, condition: Condition, rounds: Sequence[Round]) -> None:
        interval = self.options.interval_ms / 1000
        for one in rounds:
            started = time.perf_counter()
            if await self.held(one) != 1:  # cached now, showing the hold
                condition.wrong.append(f"hold {one.hold_id} did not show before its release")
                continue
            await self.booking.ReleaseHold(
                booking_pb2.ReleaseHoldRequest(hold_id=one.hold_id),
                metadata=self.metadata,
                timeout=CALL_TIMEOUT_SECONDS,
            )
            released = time.perf_counter()
            while await self.held(one) != 0:
                if time.perf_counter() - released > CALL_TIMEOUT_SECONDS:
                    condition.wrong.append(f"the release of {one.hold_id} never showed")
                    break
            else:
                condition.lags.append(time.perf_counter() - released)
            await asyncio.sleep(max(0.0, started + interval - time.perf_counter()))


def actions_of(delta: Samples) -> dict[str, int]:
    prefix = f"{ACTIONS_METRIC}{{outcome="
    return {
        name.removeprefix(prefix).rstrip("}"): round(value)
        for name, value in sorted(delta.items())
        if name.startswith(prefix)
    }


class StreamWatch:
    """Reads the availability stream as a consumer would, and notes when each
    release's message arrived, against its commit time."""

    def __init__(self, redis: Redis, key: str, tenant: str) -> None:
        self._redis = redis
        self._key = key
        self._tenant = tenant.encode()
        self.arrived: dict[str, float] = {}  # hold id -> seconds after commit
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._read())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _read(self) -> None:
        last: str | bytes = "$"
        while True:
            found = cast(
                "list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]",
                await self._redis.xread({self._key: last}, count=500, block=1000),
            )
            for _, entries in found or []:
                for entry_id, fields in entries:
                    now = time.time()
                    last = entry_id
                    dedupe = fields[b"dedupe"].decode()
                    if fields[b"tenant"] == self._tenant and dedupe.startswith("hold.released:"):
                        written = datetime.fromisoformat(fields[b"written_at"].decode())
                        self.arrived[dedupe.partition(":")[2]] = now - written.timestamp()
