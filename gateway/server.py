"""Wires the gateway together and runs it."""

from __future__ import annotations

import logging

import asyncpg

from gateway.app import create_app
from gateway.auth import Authenticator
from gateway.config import GatewaySettings
from gateway.context import Gateway
from gateway.downstream import Downstream
from gateway.metrics import GatewayMetrics
from gateway.ratelimit import RateLimiter
from gateway.readiness import Readiness
from gateway.stream import AvailabilityHub, SharedReads, StreamQuota
from holdfast.platform.config import load
from holdfast.platform.db import create_pool
from holdfast.platform.db_watch import DatabaseWatcher
from holdfast.platform.http_server import HttpHost
from holdfast.platform.lifecycle import Lifecycle
from holdfast.platform.metrics import PoolMetrics
from holdfast.platform.redis import create_redis, redis_key
from holdfast.platform.service import run_service
from holdfast.platform.streams import AVAILABILITY_TOPIC, stream_key
from holdfast.tenancy.keys import KeyRepository

log = logging.getLogger(__name__)

# The stream reader blocks this long per read; its client allows for that.
_STREAM_BLOCK_MS = 1000


class GatewayApp:
    """The gateway's parts, started and stopped in the right order."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.metrics = GatewayMetrics()
        self.redis = create_redis(settings, "holdfast-gateway")
        self.stream_redis = create_redis(
            settings, "holdfast-gateway-stream", blocking_seconds=_STREAM_BLOCK_MS / 1000
        )
        self.pool: asyncpg.Pool | None = None
        PoolMetrics(self.metrics.registry, lambda: self.pool)
        self.downstream: Downstream | None = None
        self.hub: AvailabilityHub | None = None
        self.http: HttpHost | None = None
        self.readiness: Readiness | None = None
        # The key store's pool is renewed after an outage, and holdfast_db_up
        # says whether it answers; /readyz asks it afresh on every call.
        self.database = DatabaseWatcher(
            settings, "holdfast-gateway", pool=lambda: self.pool, registry=self.metrics.registry
        )
        self.parts = Lifecycle()
        self.parts.add("stream redis", stop=self.stream_redis.aclose)
        self.parts.add("redis", stop=self.redis.aclose)

    @property
    def port(self) -> int:
        assert self.http is not None
        return self.http.port

    async def start(self) -> None:
        s = self.settings
        self.pool = await create_pool(s, "holdfast-gateway")
        self.parts.add("database pool", stop=self.pool.close)
        self.downstream = Downstream(s.booking_target, s.availability_target)
        self.parts.add("downstream", stop=self.downstream.close)
        self.hub = AvailabilityHub(
            self.stream_redis, stream_key(s, AVAILABILITY_TOPIC), _STREAM_BLOCK_MS
        )
        keys = KeyRepository(self.pool)
        limiter = RateLimiter(self.redis, redis_key(s, "ratelimit"), s.rate_limit_period_seconds)
        self.readiness = Readiness(s, self.downstream, keys, limiter)
        self.parts.add("readiness", stop=self.readiness.close)
        gateway = Gateway(
            settings=s,
            auth=Authenticator(
                keys,
                s.key_cache_seconds,
                s.key_outage_grace_seconds,
                on_grace=self.metrics.keys_in_grace.inc,
            ),
            limiter=limiter,
            downstream=self.downstream,
            hub=self.hub,
            metrics=self.metrics,
            readiness=self.readiness,
            streams=StreamQuota(s.sse_max_streams_per_key),
            stream_reads=SharedReads(),
        )
        self.http = HttpHost(
            create_app(gateway),
            s.gateway_host,
            s.gateway_port,
            s.shutdown_grace_seconds,
            trusted_proxies=s.trusted_proxies,
        )
        # Stopped in reverse: the requests drain first, the clients close last.
        self.parts.add("availability hub", start=self.hub.start, stop=self.hub.stop)
        self.parts.add("database watcher", start=self.database.start, stop=self.database.stop)
        self.parts.add("requests", start=self.http.start, stop=self.http.stop)
        await self.parts.start()

    async def stop(self) -> None:
        await self.parts.stop()


def main() -> None:
    settings = load(GatewaySettings)
    run_service("gateway", settings, lambda: GatewayApp(settings))
