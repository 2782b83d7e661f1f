"""`/readyz`: each dependency of the gateway, whether it answers and how fast,
and what that means for the gateway as a whole.

- booking: up while its BookingService health entry is SERVING; down when
  NOT_SERVING (its database is away) or unreachable.
- availability: up while SERVING with its cache live; degraded while it
  answers from Postgres (cache not live); down when NOT_SERVING (neither
  Postgres nor its cache) or unreachable.
- postgres, the key store: up while it answers `SELECT 1`; down otherwise
  (keys read before are served from memory for HOLDFAST_KEY_OUTAGE_GRACE_SECONDS,
  others get 503).
- redis: up while it answers PING; down otherwise (rate limits fail open or
  closed, availability streams stop).
- stripe, only when HOLDFAST_STRIPE_API_BASE is set: up while it answers
  without a server error; down otherwise (checkouts fail).

Overall: `unhealthy` (503) when the gateway can answer no API call at all:
booking and availability both down, or Redis down while rate limits fail
closed. Anything else short of everything up is `degraded` (200): the
gateway stays in its load balancer and answers what it cannot do with 503
and Retry-After itself, which is better for clients than a load balancer
with no gateway left behind it. All up is `healthy` (200).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.config import GatewaySettings
from gateway.downstream import Downstream
from gateway.ratelimit import RateLimiter
from holdfast.contracts.availability.v1 import availability_pb2
from holdfast.contracts.booking.v1 import booking_pb2
from holdfast.tenancy.keys import KeyRepository

CHECK_TIMEOUT_SECONDS = 1.0

_BOOKING = booking_pb2.DESCRIPTOR.services_by_name["BookingService"].full_name
_AVAILABILITY = availability_pb2.DESCRIPTOR.services_by_name["AvailabilityService"].full_name
# The availability service's own entry for its cache (services.availability.server).
_AVAILABILITY_CACHE = "holdfast.availability.cache"

Status = Literal["up", "degraded", "down"]
Overall = Literal["healthy", "degraded", "unhealthy"]


@dataclass(frozen=True)
class Check:
    status: Status
    latency_ms: float
    detail: str = ""

    def as_json(self) -> dict[str, object]:
        body: dict[str, object] = {"status": self.status, "latency_ms": self.latency_ms}
        if self.detail:
            body["detail"] = self.detail
        return body


class _Down(Exception):
    """A dependency answered, and its answer is "no"."""


class _Degraded(Exception):
    """A dependency answers, but not as well as it should."""


class Readiness:
    def __init__(
        self,
        settings: GatewaySettings,
        downstream: Downstream,
        keys: KeyRepository,
        limiter: RateLimiter,
    ) -> None:
        self._settings = settings
        self._downstream = downstream
        self._keys = keys
        self._limiter = limiter
        self._http = httpx.AsyncClient(timeout=CHECK_TIMEOUT_SECONDS)

    async def close(self) -> None:
        await self._http.aclose()

    async def report(self) -> tuple[Overall, dict[str, Check]]:
        probes: dict[str, Callable[[], Awaitable[Status]]] = {
            "booking": self._booking,
            "availability": self._availability,
            "postgres": self._postgres,
            "redis": self._redis,
        }
        if self._settings.stripe_api_base:
            probes["stripe"] = self._stripe
        results = await asyncio.gather(*(_timed(probe) for probe in probes.values()))
        checks = dict(zip(probes, results, strict=True))
        return self._overall(checks), checks

    def _overall(self, checks: dict[str, Check]) -> Overall:
        down = {name for name, check in checks.items() if check.status == "down"}
        fails_closed = self._settings.rate_limit_when_redis_down == "closed"
        if {"booking", "availability"} <= down or ("redis" in down and fails_closed):
            return "unhealthy"
        if any(check.status != "up" for check in checks.values()):
            return "degraded"
        return "healthy"

    async def _serving(self, channel: grpc.aio.Channel, service: str) -> None:
        answer = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=CHECK_TIMEOUT_SECONDS
        )
        if answer.status != health_pb2.HealthCheckResponse.SERVING:
            raise _Down(health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status))

    async def _booking(self) -> Status:
        await self._serving(self._downstream.booking_channel, _BOOKING)
        return "up"

    async def _availability(self) -> Status:
        channel = self._downstream.availability_channel
        await self._serving(channel, _AVAILABILITY)
        try:
            await self._serving(channel, _AVAILABILITY_CACHE)
        except _Down:
            raise _Degraded("answering from Postgres: its cache is not live") from None
        return "up"

    async def _postgres(self) -> Status:
        await self._keys.ping()
        return "up"

    async def _redis(self) -> Status:
        await self._limiter.ping()
        return "up"

    async def _stripe(self) -> Status:
        # No key is sent: any answer but a server error shows Stripe is there.
        base = (self._settings.stripe_api_base or "").rstrip("/")
        answer = await self._http.get(f"{base}/v1/")
        if answer.status_code >= 500:
            raise _Down(f"HTTP {answer.status_code}")
        return "up"


async def _timed(probe: Callable[[], Awaitable[Status]]) -> Check:
    started = time.perf_counter()
    status: Status = "down"
    detail = ""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            status = await probe()
    except _Degraded as reason:
        status, detail = "degraded", str(reason)
    except _Down as reason:
        detail = str(reason)
    except TimeoutError:
        detail = f"no answer within {CHECK_TIMEOUT_SECONDS:g} s"
    except grpc.aio.AioRpcError as error:
        detail = error.code().name
    except Exception as error:  # whatever went wrong, it is not there
        detail = type(error).__name__
    latency_ms = round((time.perf_counter() - started) * 1000, 2)
    return Check(status, latency_ms, detail)
