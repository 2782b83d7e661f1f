"""What every route needs, and the dependencies that hand it over: the
gateway's parts, and the caller authenticated, scoped and rate limited."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fastapi import Request, Response, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from redis.exceptions import RedisError

from gateway import etags, models
from gateway.auth import Authenticator, Principal, require_scope
from gateway.config import GatewaySettings
from gateway.downstream import Downstream, call_metadata
from gateway.metrics import GatewayMetrics
from gateway.problems import ProblemError
from gateway.ratelimit import RateLimiter
from gateway.readiness import Readiness
from gateway.stream import AvailabilityHub, SharedReads, StreamQuota

# What the gateway keeps of the answers it sent (a 24-slot day is ~4 kB).
_KEPT_ANSWER_BYTES = 32 * 1024 * 1024


@dataclass
class Gateway:
    settings: GatewaySettings
    auth: Authenticator
    limiter: RateLimiter
    downstream: Downstream
    hub: AvailabilityHub
    metrics: GatewayMetrics
    readiness: Readiness
    streams: StreamQuota
    stream_reads: SharedReads[models.Availability | models.WindowAvailability]
    # Slot availability answers by ETag (gateway.etags), served again while
    # their tag holds.
    answers: etags.TaggedAnswers = field(
        default_factory=lambda: etags.TaggedAnswers(_KEPT_ANSWER_BYTES)
    )

    def metadata(self, who: Principal) -> tuple[tuple[str, str], ...]:
        return call_metadata(who.tenant, who.key_prefix)

    # After Redis failed, it is not asked again for this long: a hung Redis
    # would otherwise cost every request two timeouts (address, key).
    redis_retry_seconds: float = 1.0
    _redis_down_until: float = field(default=0.0, init=False)

    async def limit(self, checks: list[tuple[str, str, int]]) -> dict[str, str]:
        """One request against each (kind, bucket, limit), in order, in one
        round trip; 429 with Retry-After for the first one spent. Returns
        the RateLimit headers to answer with: the last bucket's (the key's,
        when both are checked), none when Redis could not be asked."""
        try:
            if time.monotonic() < self._redis_down_until:
                raise RedisError("Redis failed moments ago; not asked again yet")
            decisions = await self.limiter.check_all(
                [(f"{kind}:{bucket}", limit) for kind, bucket, limit in checks]
            )
        except RedisError:
            self._redis_down_until = max(
                self._redis_down_until, time.monotonic() + self.redis_retry_seconds
            )
            for _ in checks:
                self.metrics.rate_limit_unchecked.inc()
            if self.settings.rate_limit_when_redis_down == "closed":
                raise ProblemError(
                    503,
                    "RATE_LIMIT_UNAVAILABLE",
                    "rate limits cannot be checked; retry",
                    headers={"Retry-After": "1"},
                ) from None
            return {}
        for (kind, _, _), decision in zip(checks, decisions, strict=False):
            if not decision.allowed:
                self.metrics.rate_limited.labels(kind).inc()
                raise ProblemError(
                    429,
                    "RATE_LIMITED",
                    f"too many requests for this {kind}; slow down",
                    headers=decision.headers(),
                )
        return decisions[-1].headers()


def gateway_from(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


async def gateway_of(request: Request) -> Gateway:
    """The dependency. async: a plain function dependency runs in FastAPI's
    thread pool, a thread hop on every request for one attribute lookup."""
    return gateway_from(request)


# Only so that the OpenAPI document says how to authenticate (and which
# scope each route needs); the header is read and judged by Authenticator.
API_KEY = HTTPBearer(
    scheme_name="ApiKey",
    description="An API key of your tenant: `Authorization: Bearer hf_...`",
    auto_error=False,
)


def requires(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller, if its key is good, has `scope` and is within
    its rate limits (per client address first, then per key)."""

    documented = Security(API_KEY, scopes=[scope])

    async def principal(
        request: Request,
        response: Response,
        _: HTTPAuthorizationCredentials | None = documented,
    ) -> Principal:
        gw = gateway_from(request)
        address = request.client.host if request.client else None
        authorization = request.headers.get("authorization")
        # A key known good a moment ago: both limits in one Redis round trip.
        who = gw.auth.cached_principal(authorization)
        if who is not None and scope in who.scopes:
            response.headers.update(await gw.limit(both_limits(gw, address, who)))
            return who
        # Otherwise the address first: a flood of unknown keys is limited
        # before each one costs a read of the key store.
        response.headers.update(await gw.limit([_per_address(gw, address)]))
        who = await gw.auth.principal(authorization)
        require_scope(who, scope)
        response.headers.update(await gw.limit([_per_key(gw, who)]))
        return who

    return principal


def both_limits(gw: Gateway, address: str | None, who: Principal) -> list[tuple[str, str, int]]:
    """A known caller's limits, address first (gw.limit's checks)."""
    return [_per_address(gw, address), _per_key(gw, who)]


def _per_address(gw: Gateway, address: str | None) -> tuple[str, str, int]:
    return ("address", address or "unknown", gw.settings.rate_limit_per_address)


def _per_key(gw: Gateway, who: Principal) -> tuple[str, str, int]:
    return ("key", who.key_prefix, who.rate_per_second or gw.settings.rate_limit_per_key)
