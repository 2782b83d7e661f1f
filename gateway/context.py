"""What every route needs, and the dependencies that hand it over: the
gateway's parts, and the caller authenticated, scoped and rate limited."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request, Response, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from redis.exceptions import RedisError

from gateway.auth import Authenticator, Principal, require_scope
from gateway.config import GatewaySettings
from gateway.downstream import Downstream, call_metadata
from gateway.metrics import GatewayMetrics
from gateway.problems import ProblemError
from gateway.ratelimit import RateLimiter
from gateway.stream import AvailabilityHub


@dataclass
class Gateway:
    settings: GatewaySettings
    auth: Authenticator
    limiter: RateLimiter
    downstream: Downstream
    hub: AvailabilityHub
    metrics: GatewayMetrics

    def metadata(self, who: Principal) -> tuple[tuple[str, str], ...]:
        return call_metadata(who.tenant, who.key_prefix)

    async def limit(self, kind: str, bucket: str, per_second: int, response: Response) -> None:
        """One request against a bucket; 429 with Retry-After when spent."""
        try:
            decision = await self.limiter.check(f"{kind}:{bucket}", per_second)
        except RedisError:
            self.metrics.rate_limit_unchecked.inc()
            if self.settings.rate_limit_when_redis_down == "closed":
                raise ProblemError(
                    503,
                    "RATE_LIMIT_UNAVAILABLE",
                    "rate limits cannot be checked; retry",
                    headers={"Retry-After": "1"},
                ) from None
            return
        if not decision.allowed:
            self.metrics.rate_limited.labels(kind).inc()
            raise ProblemError(
                429,
                "RATE_LIMITED",
                f"too many requests for this {kind}; slow down",
                headers=decision.headers(),
            )
        response.headers.update(decision.headers())


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


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
        gw = gateway_of(request)
        address = request.client.host if request.client else "unknown"
        await gw.limit("address", address, gw.settings.rate_limit_per_address, response)
        who = await gw.auth.principal(request.headers.get("authorization"))
        require_scope(who, scope)
        per_second = who.rate_per_second or gw.settings.rate_limit_per_key
        await gw.limit("key", who.key_prefix, per_second, response)
        return who

    return principal
