"""The reservation code the booking service runs (`Reservations.create_hold`),
called straight on asyncpg with the service's settings: the baseline that
`bench.holds` compares the gRPC path with."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import asyncpg
import grpc

from bench.grpc_load import OK, HoldCall, outcome_of_status
from holdfast.contracts.booking.v1 import (
    booking_pb2,
)
from holdfast.platform.context import correlation_id_var, new_correlation_id
from holdfast.platform.db import create_pool
from holdfast.platform.errors import DomainError
from services.booking import convert
from services.booking.config import BookingSettings
from services.booking.domain import Hold, HoldRequest
from services.booking.idempotency import IdempotentCall, ResponseCodec
from services.booking.repository import BookingRepository
from services.booking.reservations import Reservations

# What a hold's response is made of; without a request id it is built, not stored.
EncodeHold = Callable[[Hold], bytes]


def proto_encode(hold: Hold) -> bytes:
    """What the gRPC handler passes: the serialized CreateHoldResponse."""
    return booking_pb2.CreateHoldResponse(hold=convert.hold(hold)).SerializeToString()


def empty_encode(hold: Hold) -> bytes:
    return b""


ENCODERS: dict[str, EncodeHold] = {"proto": proto_encode, "empty": empty_encode}


class DirectPath:
    """`Reservations` on a pool with the service's settings, no gRPC in between."""

    def __init__(self, settings: BookingSettings, pool: asyncpg.Pool, encode: EncodeHold) -> None:
        self.settings = settings
        self.pool = pool
        self.reservations = Reservations(BookingRepository(pool))
        self.call = IdempotentCall(None, ResponseCodec(encode, bytes, bytes))

    @classmethod
    async def open(cls, database_url: str, encode: EncodeHold) -> DirectPath:
        # The same settings object the service builds, so the same HOLDFAST_*
        # environment gives both paths the same pool size and timeouts.
        values: dict[str, Any] = {
            "database_url": database_url,
            # Never used: this path writes outbox rows like the service does,
            # and the running service's relay publishes them.
            "redis_url": "redis://127.0.0.1:6379/0",
        }
        settings = BookingSettings(**values)
        pool = await create_pool(
            settings,
            "holdfast-bench-direct",
            extra_settings={"lock_timeout": str(settings.lock_timeout_ms)},
        )
        return cls(settings, pool, encode)

    def holder(self, tenant: str, resource_id: str, slot_ids: Sequence[str]) -> HoldCall:
        ttl = timedelta(seconds=self.settings.hold_ttl_default_seconds)
        requests = [
            HoldRequest(
                resource_id=uuid.UUID(resource_id),
                slot_ids=(uuid.UUID(slot_id),),
                quantity=1,
                customer_ref="bench",
                ttl=ttl,
            )
            for slot_id in slot_ids
        ]
        actor = f"tenant:{tenant}"  # what the service records for a caller without x-actor

        async def hold(i: int) -> str:
            # As the server interceptor does: every call has its correlation id,
            # which the repository writes into the audit row.
            correlation_id_var.set(new_correlation_id())
            try:
                await self.reservations.create_hold(
                    tenant, requests[i % len(requests)], self.call, actor
                )
            except DomainError as error:
                code = getattr(grpc.StatusCode, error.kind.value)
                return outcome_of_status(code, error.reason)
            return OK

        return hold
