"""Rate limits: GCRA (the generic cell rate algorithm) in Redis, atomic in one
round trip for all of a request's limits, shared by every gateway replica.

Each bucket stores one timestamp: the theoretical arrival time (TAT) of the
next request. A request is allowed if it would not push the TAT more than the
burst allowance ahead of now; the answer also says how many requests remain
in the burst and when the bucket is full again, for the RateLimit headers.

Requests that arrive while a check is on its way to Redis are checked
together in the next one (one script call for all of them, each decided
exactly as if alone, in arrival order): under load the Redis client's work
per request, a fifth of a cached read's CPU before, is shared by a batch.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

# KEYS: every bucket of every request in the batch; ARGV: for each bucket its
# emission interval (ms), its burst (requests) and which request it belongs
# to. Redis's own clock, so replicas with skewed clocks share one notion of
# now. A request's buckets are taken in order and its first refusal ends it
# (its buckets after that are not counted, and answered -1). Each bucket's
# answer is 4 numbers: allowed (1, 0 or -1), retry after (ms), remaining,
# reset after (ms).
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local out = {}
local refused = nil
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[3 * i - 2])
  local burst = tonumber(ARGV[3 * i - 1])
  local request = ARGV[3 * i]
  if request == refused then
    for _, v in ipairs({-1, 0, 0, 0}) do out[#out + 1] = v end
  else
    local tat = tonumber(redis.call('GET', key) or now)
    if tat < now then tat = now end
    local allow_at = tat + interval - burst * interval
    if now < allow_at then
      refused = request
      for _, v in ipairs({0, allow_at - now, 0, tat - now}) do out[#out + 1] = v end
    else
      local new_tat = tat + interval
      redis.call('SET', key, new_tat, 'PX', math.ceil(new_tat - now) + 1000)
      local remaining = math.floor((now + burst * interval - new_tat) / interval)
      for _, v in ipairs({1, 0, remaining, new_tat - now}) do out[#out + 1] = v end
    end
  end
end
return out
"""
# Requests checked by one script call at most (it holds Redis while it runs).
_MAX_BATCH = 256


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


_Pending = tuple[Sequence[tuple[str, int]], "asyncio.Future[list[Decision]]"]


class RateLimiter:
    """`period_seconds`: the time each limit counts requests in (a second
    unless set otherwise); a bucket refills by one request every period / limit."""

    def __init__(self, redis: Redis, prefix: str, period_seconds: float = 1.0) -> None:
        self._redis = redis
        self._prefix = prefix
        self._period_ms = period_seconds * 1000
        self._script = redis.register_script(_GCRA)
        self._waiting: list[_Pending] = []
        self._sender: asyncio.Task[None] | None = None

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
        decided: asyncio.Future[list[Decision]] = asyncio.get_running_loop().create_future()
        self._waiting.append((buckets, decided))
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_waiting())
        return await decided

    async def _send_waiting(self) -> None:
        """Checks what waits, a batch per round trip, until nothing does.
        (Started as a task: requests arriving in the same turn of the event
        loop join the first batch.)"""
        batch: list[_Pending] = []
        try:
            while self._waiting:
                batch = [p for p in self._waiting[:_MAX_BATCH] if not p[1].done()]
                del self._waiting[:_MAX_BATCH]
                if batch:
                    await self._decide(batch)
        except BaseException:  # cancelled (shutdown): nobody is left waiting
            for _, decided in batch + self._waiting:
                if not decided.done():
                    decided.set_exception(RedisError("the rate-limit check was cancelled"))
            self._waiting.clear()
            raise
        finally:
            self._sender = None

    async def _decide(self, batch: list[_Pending]) -> None:
        keys: list[str] = []
        args: list[float] = []
        for request, (buckets, _) in enumerate(batch):
            for bucket, limit in buckets:
                keys.append(f"{self._prefix}:{bucket}")
                args += [self._period_ms / limit, limit, request]
        try:
            flat = await self._script(keys=keys, args=args)
        except RedisError as error:
            for _, decided in batch:
                if not decided.done():  # each caller raises an error of its own
                    decided.set_exception(type(error)(*error.args))
            return
        at = 0
        for buckets, decided in batch:
            answers = flat[at : at + 4 * len(buckets)]
            at += 4 * len(buckets)
            if not decided.done():
                decided.set_result(_decisions(answers, buckets))

    async def ping(self) -> bool:
        return bool(await self._redis.ping())


def _decisions(flat: Sequence[float], buckets: Sequence[tuple[str, int]]) -> list[Decision]:
    """One request's decisions, up to its first refusal."""
    decisions = []
    for i, (_, limit) in zip(range(0, len(flat), 4), buckets, strict=True):
        if flat[i] == -1:  # not counted: an earlier bucket refused
            break
        decisions.append(
            Decision(
                allowed=bool(flat[i]),
                limit=limit,
                remaining=int(flat[i + 2]),
                retry_after=float(flat[i + 1]) / 1000,
                reset_after=float(flat[i + 3]) / 1000,
            )
        )
    return decisions
