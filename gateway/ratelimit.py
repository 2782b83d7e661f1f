"""Rate limits: GCRA (the generic cell rate algorithm) in Redis, atomic in one
round trip, shared by every gateway replica.

Each bucket stores one timestamp: the theoretical arrival time (TAT) of the
next request. A request is allowed if it would not push the TAT more than the
burst allowance ahead of now; the answer also says how many requests remain
in the burst and when the bucket is full again, for the RateLimit headers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from redis.asyncio import Redis

# KEYS[1] bucket; ARGV: emission interval (ms), burst (requests). Redis's own
# clock, so replicas with skewed clocks share one notion of now.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat + interval - burst * interval
if now < allow_at then
  return {0, allow_at - now, 0, tat - now}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now) + 1000)
local remaining = math.floor((now + burst * interval - new_tat) / interval)
return {1, 0, remaining, new_tat - now}
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    # Seconds until a request would be allowed (0 when allowed).
    retry_after: float
    # Seconds until the bucket is full again.
    reset_after: float

    def headers(self) -> dict[str, str]:
        """The draft IETF RateLimit fields, plus Retry-After when refused."""
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(math.ceil(self.reset_after)),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return headers


class RateLimiter:
    """`period_seconds`: the time each limit counts requests in (a second
    unless set otherwise); a bucket refills by one request every period / limit."""

    def __init__(self, redis: Redis, prefix: str, period_seconds: float = 1.0) -> None:
        self._redis = redis
        self._prefix = prefix
        self._period_ms = period_seconds * 1000
        self._script = redis.register_script(_GCRA)

    async def check(self, bucket: str, limit: int) -> Decision:
        """One request against `bucket`, allowed `limit` per period with a
        burst of as many. Raises RedisError when Redis cannot answer."""
        interval = self._period_ms / limit
        allowed, retry_ms, remaining, reset_ms = await self._script(
            keys=[f"{self._prefix}:{bucket}"], args=[interval, limit]
        )
        return Decision(
            allowed=bool(allowed),
            limit=limit,
            remaining=int(remaining),
            retry_after=float(retry_ms) / 1000,
            reset_after=float(reset_ms) / 1000,
        )

    async def ping(self) -> bool:
        return bool(await self._redis.ping())
