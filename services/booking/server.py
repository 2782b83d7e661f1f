"""Wires the booking service together and runs it."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from redis.asyncio import Redis

from holdfast.contracts.booking.v1 import (
    booking_pb2,
    booking_pb2_grpc,
    inventory_pb2,
    inventory_pb2_grpc,
)
from holdfast.platform.config import load
from holdfast.platform.db import create_pool
from holdfast.platform.db_watch import DatabaseWatcher
from holdfast.platform.grpc_server import GrpcHost
from holdfast.platform.lifecycle import Lifecycle
from holdfast.platform.metrics import MetricsServer, PoolMetrics
from holdfast.platform.pagination import PageTokens, page_token_secret
from holdfast.platform.redis import create_redis
from holdfast.platform.service import run_service
from holdfast.platform.streams import ChangeMessage
from holdfast.platform.stripe_api import StripeConnection
from services.booking.config import BookingSettings
from services.booking.handlers import BookingHandler, InventoryHandler
from services.booking.inventory import Inventory
from services.booking.metrics import BookingMetrics
from services.booking.outbox.relay import OutboxRelay
from services.booking.outbox.upkeep import OutboxUpkeep
from services.booking.payments.actions import PaymentActions
from services.booking.payments.reconciler import Reconciler
from services.booking.payments.service import Payments
from services.booking.repository import BookingRepository, OutboxRepository, PaymentRepository
from services.booking.reservations import Reservations
from services.booking.sweeper import HoldSweeper

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    booking_pb2.DESCRIPTOR.services_by_name["BookingService"].full_name,
    inventory_pb2.DESCRIPTOR.services_by_name["InventoryService"].full_name,
)
ERROR_DOMAIN = "booking.holdfast"


class BookingApp:
    """The booking service's parts, started and stopped in the right order
    (`parts`: see start).

        `redis` is the client the relay publishes with; the service makes one
        from its settings unless given one (the tests hand it one that counts
        what is sent). The booking path itself never reads Redis.
    """

    def __init__(self, settings: BookingSettings, redis: Redis | None = None) -> None:
        self.settings = settings
        self.metrics = BookingMetrics()
        self.redis = redis or create_redis(settings, "holdfast-booking")
        self.pool: asyncpg.Pool | None = None
        PoolMetrics(self.metrics.registry, lambda: self.pool)
        self.host: GrpcHost | None = None
        self.sweeper: HoldSweeper | None = None
        self.relay: OutboxRelay | None = None
        self.payment_actions: PaymentActions | None = None
        self.outbox_upkeep: OutboxUpkeep | None = None
        self.payments: Payments | None = None
        self.reconciler: Reconciler | None = None
        self.stripe = StripeConnection(settings)
        self.metrics_server = MetricsServer(
            self.metrics.registry, settings.metrics_host, settings.booking_metrics_port
        )
        self.database = DatabaseWatcher(
            settings,
            "holdfast-booking",
            self._database_changed,
            pool=lambda: self.pool,
            registry=self.metrics.registry,
        )
        self.parts = Lifecycle()
        self.parts.add("metrics", start=self.metrics_server.start, stop=self.metrics_server.stop)
        self.parts.add("stripe", stop=self.stripe.close)
        self.parts.add("redis", stop=self.redis.aclose)

    async def _database_changed(self, available: bool) -> None:
        # Without its database the service can answer nothing but UNAVAILABLE.
        if self.host is not None:
            await self.host.set_ready(available)

    async def _payment_action(self, message: ChangeMessage) -> None:
        assert self.payments is not None
        if message.payload.get("action") == "expire_checkout":
            await self.payments.expire_session(
                str(message.payload["session_id"]), message.dedupe_key
            )
        else:
            log.warning("unknown payment action %s", message.dedupe_key)

    @property
    def port(self) -> int:
        assert self.host is not None
        return self.host.port

    async def start(self) -> None:
        s = self.settings
        self.pool = await create_pool(
            s, "holdfast-booking", extra_settings={"lock_timeout": str(s.lock_timeout_ms)}
        )
        self.parts.add("database pool", stop=self.pool.close)
        outbox = OutboxRepository(self.pool)
        self.relay = OutboxRelay(outbox, self.redis, s, self.metrics)
        self.payment_actions = PaymentActions(outbox, s, self.metrics, self._payment_action)
        self.outbox_upkeep = OutboxUpkeep(outbox, s, self.metrics)
        repository = BookingRepository(self.pool, after_commit=self.relay.wake)
        reservations = Reservations(repository, self.metrics)
        payment_repository = PaymentRepository(self.pool)
        self.payments = Payments(
            repository, payment_repository, reservations, self.stripe.client, s, self.metrics
        )
        pages = PageTokens(await page_token_secret(self.pool, "booking"))
        self.host = self._grpc_host(
            BookingHandler(reservations, self.payments, s, pages),
            InventoryHandler(Inventory(repository), s, pages),
        )
        self.sweeper = HoldSweeper(
            reservations,
            s.sweeper_interval_seconds,
            s.sweeper_batch_size,
            s.request_id_retention_hours,
        )
        self.reconciler = Reconciler(self.payments, payment_repository, s)
        # Stopped in reverse: the calls drain first, the clients close last.
        self.parts.add(
            "outbox upkeep", start=self.outbox_upkeep.start, stop=self.outbox_upkeep.stop
        )
        self.parts.add("outbox relay", start=self.relay.start, stop=self.relay.stop)
        self.parts.add("reconciler", start=self.reconciler.start, stop=self.reconciler.stop)
        self.parts.add("hold sweeper", start=self.sweeper.start, stop=self.sweeper.stop)
        self.parts.add("database watcher", start=self.database.start, stop=self.database.stop)
        self.parts.add("calls", start=self._serve, stop=self._drain)
        await self.parts.start()

    def _grpc_host(self, booking: BookingHandler, inventory: InventoryHandler) -> GrpcHost:
        s = self.settings

        def register(server: object) -> None:
            booking_pb2_grpc.add_BookingServiceServicer_to_server(booking, server)
            inventory_pb2_grpc.add_InventoryServiceServicer_to_server(inventory, server)

        return GrpcHost(
            service_names=SERVICE_NAMES,
            register=register,
            error_domain=ERROR_DOMAIN,
            host=s.grpc_host,
            port=s.booking_port,
            grace_seconds=s.shutdown_grace_seconds,
            metrics=self.metrics.rpc,
        )

    async def _serve(self) -> None:
        assert self.host is not None
        assert self.payment_actions is not None
        self.payment_actions.start()
        await self.host.start()

    async def _drain(self) -> None:
        # Calls to Stripe in flight get the same grace as the calls being
        # drained, at the same time, so a slow Stripe never stretches a stop.
        assert self.host is not None
        assert self.payment_actions is not None
        await asyncio.gather(
            self.host.stop(), self.payment_actions.stop(self.settings.shutdown_grace_seconds)
        )

    async def stop(self) -> None:
        await self.parts.stop()


def main() -> None:
    settings = load(BookingSettings)
    run_service("booking", settings, lambda: BookingApp(settings))
