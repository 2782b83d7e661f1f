"""Wires the availability service together and runs it."""

from __future__ import annotations

import logging

import asyncpg
import grpc
from grpc_health.v1 import health_pb2
from redis.asyncio import Redis

from holdfast.contracts.availability.v1 import availability_pb2
from holdfast.platform.config import load
from holdfast.platform.db import create_pool
from holdfast.platform.db_watch import DatabaseWatcher
from holdfast.platform.grpc_server import GrpcHost
from holdfast.platform.lifecycle import Lifecycle
from holdfast.platform.metrics import MetricsServer, PoolMetrics
from holdfast.platform.redis import create_redis
from holdfast.platform.service import run_service
from holdfast.platform.streams import AVAILABILITY_TOPIC, stream_key
from services.availability.cache import LocalCache, SharedCache
from services.availability.config import AvailabilitySettings
from services.availability.consumer import InvalidationConsumer
from services.availability.handlers import AvailabilityHandler, method_handlers
from services.availability.metrics import AvailabilityMetrics
from services.availability.reader import AvailabilityReader
from services.availability.repository import AvailabilityRepository
from services.availability.window_repository import WindowRepository
from services.availability.windows import WindowReader

log = logging.getLogger(__name__)

SERVICE_NAME = availability_pb2.DESCRIPTOR.services_by_name["AvailabilityService"].full_name
# A health entry of its own: SERVING while answers come from the cache,
# NOT_SERVING while degraded to Postgres. The service's own entry (readiness)
# is SERVING while it can answer at all: from the cache, or from Postgres.
CACHE_HEALTH = "holdfast.availability.cache"
ERROR_DOMAIN = "availability.holdfast"


class AvailabilityApp:
    """The availability service's parts, started and stopped in the right order.

    `redis` is the client for cache reads and writes; the service makes one
    from its settings unless given one. The stream consumer always has a
    client of its own, since its reads block.
    """

    def __init__(self, settings: AvailabilitySettings, redis: Redis | None = None) -> None:
        self.settings = settings
        self.metrics = AvailabilityMetrics()
        self.redis = redis or create_redis(settings, "holdfast-availability")
        self.stream_redis = create_redis(
            settings,
            "holdfast-availability-stream",
            blocking_seconds=settings.consumer_block_ms / 1000,
        )
        self.pool: asyncpg.Pool | None = None
        PoolMetrics(self.metrics.registry, lambda: self.pool)
        self.host: GrpcHost | None = None
        self.local = LocalCache(settings.local_cache_entries)
        self.shared = SharedCache(self.redis, settings, settings.cache_ttl_seconds)
        self.reader: AvailabilityReader | None = None
        self.consumer: InvalidationConsumer | None = None
        self.metrics_server = MetricsServer(
            self.metrics.registry, settings.metrics_host, settings.availability_metrics_port
        )
        self.database = DatabaseWatcher(
            settings,
            "holdfast-availability",
            self._readiness_changed,
            dsn=settings.read_database_url,
            pool=lambda: self.pool,
            registry=self.metrics.registry,
        )
        self.parts = Lifecycle()
        self.parts.add("metrics", start=self.metrics_server.start, stop=self.metrics_server.stop)
        self.parts.add("stream redis", stop=self.stream_redis.aclose)
        self.parts.add("redis", stop=self.redis.aclose)

    @property
    def port(self) -> int:
        assert self.host is not None
        return self.host.port

    def _applied_change_id(self) -> str:
        return self.consumer.last_id if self.consumer is not None else ""

    def _cache_live(self) -> bool:
        return self.consumer is not None and self.consumer.live

    async def _cache_live_changed(self, live: bool) -> None:
        if self.host is not None:
            status = health_pb2.HealthCheckResponse
            await self.host.health.set(CACHE_HEALTH, status.SERVING if live else status.NOT_SERVING)
        await self._readiness_changed(live)

    async def _readiness_changed(self, _: bool) -> None:
        # Ready while it can answer: with Postgres away, cached answers still
        # come from Redis (misses are UNAVAILABLE); with Redis away, every
        # answer comes from Postgres. Only without both can it answer nothing.
        if self.host is not None:
            await self.host.set_ready(self.database.available or self._cache_live())

    async def start(self) -> None:
        s = self.settings
        self.metrics.degraded.set(1)  # until the consumer has caught up
        self.pool = await create_pool(
            s,
            "holdfast-availability",
            dsn=s.read_database_url,
            # It only reads: let Postgres enforce that.
            extra_settings={"default_transaction_read_only": "on"},
        )
        self.parts.add("database pool", stop=self.pool.close)
        self.reader = AvailabilityReader(
            AvailabilityRepository(self.pool),
            self.shared,
            self.local,
            self.metrics,
            s.max_slots_per_resource,
            self._cache_live,
        )
        windows = WindowReader(
            WindowRepository(self.pool), self.shared, self.local, self.metrics, self._cache_live
        )
        self.host = self._grpc_host(
            AvailabilityHandler(self.reader, windows, s, self._applied_change_id)
        )
        self.consumer = InvalidationConsumer(
            self.stream_redis,
            stream_key(s, AVAILABILITY_TOPIC),
            self.shared,
            self.local,
            self.metrics,
            block_ms=s.consumer_block_ms,
            batch_size=s.consumer_batch_size,
            retry_max_seconds=s.consumer_retry_max_seconds,
            on_live_change=self._cache_live_changed,
        )
        # Stopped in reverse: the calls drain first, the clients close last.
        # NOT_SERVING until the consumer has caught up.
        self.parts.add("cache health", start=self._cache_not_serving)
        self.parts.add("invalidations", start=self.consumer.start, stop=self.consumer.stop)
        self.parts.add("database watcher", start=self.database.start, stop=self.database.stop)
        self.parts.add("calls", start=self.host.start, stop=self.host.stop)
        await self.parts.start()

    def _grpc_host(self, handler: AvailabilityHandler) -> GrpcHost:
        s = self.settings

        def register(server: grpc.aio.Server) -> None:
            handlers = method_handlers(handler)
            server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),)
            )
            server.add_registered_method_handlers(SERVICE_NAME, handlers)

        return GrpcHost(
            service_names=(SERVICE_NAME,),
            register=register,
            error_domain=ERROR_DOMAIN,
            host=s.grpc_host,
            port=s.availability_port,
            grace_seconds=s.shutdown_grace_seconds,
            metrics=self.metrics.rpc,
        )

    async def _cache_not_serving(self) -> None:
        assert self.host is not None
        await self.host.health.set(CACHE_HEALTH, health_pb2.HealthCheckResponse.NOT_SERVING)

    async def stop(self) -> None:
        await self.parts.stop()


def main() -> None:
    settings = load(AvailabilitySettings)
    run_service("availability", settings, lambda: AvailabilityApp(settings))
