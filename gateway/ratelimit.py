"""Rate limits: GCRA (the generic cell rate algorithm) in Redis, atomic in one
round trip for all of a request's limits, shared by every gateway replica.

Each bucket stores one timestamp: the theoretical arrival time (TAT) of the
next request. A request is allowed if it would not push the TAT more than the
burst allowance ahead of now; the answer also says how many requests remain
in the burst and when the bucket is full again, for the RateLimit headers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

# KEYS: the buckets, in order; ARGV: each bucket's emission interval (ms) and
# burst (requests). Redis's own clock, so replicas with skewed clocks share
# one notion of now. Buckets are taken in order and the first refusal ends
# it (the buckets after it are not counted): one round trip for a request's
# every limit. Each bucket's answer is 4 numbers: allowed, retry after (ms),
# remaining, reset after (ms).
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local out = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local allow_at = tat + interval - burst * interval
  if now < allow_at then
    for _, v in ipairs({0, allow_at - now, 0, tat - now}) do out[#out + 1] = v end
    return out
  end
  local new_tat = tat + interval
  redis.call('SET', key, new_tat, 'PX', math.ceil(new_tat - now) + 1000)
  local remaining = math.floor((now + burst * interval - new_tat) / interval)
  for _, v in ipairs({1, 0, remaining, new_tat - now}) do out[#out + 1] = v end
end
return out
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
        [decision] = await self.check_all([(bucket, limit)])
        return decision

    async def check_all(self, buckets: Sequence[tuple[str, int]]) -> list[Decision]:
        """One request against each (bucket, limit) in order, in one round
        trip: the decisions up to the first refusal (the last one then), the
        buckets after it left uncounted. Raises RedisError when Redis
        cannot answer."""
        args: list[float] = []
        for _, limit in buckets:
            args += [self._period_ms / limit, limit]
        flat = await self._script(keys=[f"{self._prefix}:{b}" for b, _ in buckets], args=args)
        return [
            Decision(
                allowed=bool(flat[i]),
                limit=limit,
                remaining=int(flat[i + 2]),
                retry_after=float(flat[i + 1]) / 1000,
                reset_after=float(flat[i + 3]) / 1000,
            )
            for i, (_, limit) in zip(range(0, len(flat), 4), buckets, strict=False)
        ]

    async def ping(self) -> bool:
        return bool(await self._redis.ping())
