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

    @property
    def port(self) -> int:
        assert self.http is not None
        return self.http.port

    async def start(self) -> None:
        s = self.settings
        self.pool = await create_pool(s, "holdfast-gateway")
        self.downstream = Downstream(s.booking_target, s.availability_target)
        self.hub = AvailabilityHub(
            self.stream_redis, stream_key(s, AVAILABILITY_TOPIC), _STREAM_BLOCK_MS
        )
        keys = KeyRepository(self.pool)
        limiter = RateLimiter(self.redis, redis_key(s, "ratelimit"), s.rate_limit_period_seconds)
        self.readiness = Readiness(s, self.downstream, keys, limiter)
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
        self.hub.start()
        self.http = HttpHost(
            create_app(gateway),
            s.gateway_host,
            s.gateway_port,
            s.shutdown_grace_seconds,
            trusted_proxies=s.trusted_proxies,
        )
        await self.http.start()
        self.database.start()

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.stop()
        await self.database.stop()
        if self.hub is not None:
            await self.hub.stop()
        if self.readiness is not None:
            await self.readiness.close()
        if self.downstream is not None:
            await self.downstream.close()
        if self.pool is not None:
            await self.pool.close()
        await self.redis.aclose()
        await self.stream_redis.aclose()


def main() -> None:
    settings = load(GatewaySettings)
    run_service("gateway", settings, lambda: GatewayApp(settings))
