"""The Redis client every service uses: short timeouts, few retries.

Redis is a cache and a message bus in holdfast, never the source of truth, so
a slow Redis must look like a down Redis quickly: callers then fall back to
Postgres (availability) or leave messages in the outbox (booking) instead of
waiting.
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from holdfast.platform.config import PlatformSettings

# Connections a client may open (redis-py's default): a burst beyond them queues.
_MAX_CONNECTIONS = 100


def create_redis(
    settings: PlatformSettings, client_name: str, *, blocking_seconds: float = 0.0
) -> Redis:
    """A client; `blocking_seconds` is how long its calls may block on purpose
    (a blocking stream read), added to the usual timeout."""
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        # A burst of requests past the pool's connections waits for one (up
        # to the usual timeout) instead of failing at once, as redis-py's
        # default pool does ("Too many connections"), which the availability
        # service took for Redis being down.
        max_connections=_MAX_CONNECTIONS,
        timeout=settings.redis_timeout_seconds,
        client_name=client_name,
        socket_timeout=settings.redis_timeout_seconds + blocking_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
        # One quick retry covers a connection the server closed while idle.
        retry=Retry(ExponentialBackoff(cap=0.1, base=0.01), retries=1),
        health_check_interval=15,
    )
    return Redis.from_pool(pool)


def redis_key(settings: PlatformSettings, *parts: str) -> str:
    """`<prefix>:<part>:<part>...`, the one place key names are joined."""
    return ":".join((settings.redis_prefix, *parts))
