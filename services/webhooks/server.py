"""Wires the webhook service together and runs it: the HTTP receiver Stripe
calls, the event processor, and the gRPC admin service."""

from __future__ import annotations

import logging
from typing import cast

import asyncpg
import grpc

from holdfast.contracts.booking.v1 import booking_pb2_grpc
from holdfast.contracts.webhooks.v1 import webhook_admin_pb2, webhook_admin_pb2_grpc
from holdfast.platform.config import load
from holdfast.platform.db import create_pool
from holdfast.platform.db_watch import DatabaseWatcher
from holdfast.platform.grpc_server import GrpcHost, open_channel
from holdfast.platform.http_server import HttpHost
from holdfast.platform.lifecycle import Lifecycle
from holdfast.platform.metrics import MetricsServer, PoolMetrics
from holdfast.platform.pagination import PageTokens, page_token_secret
from holdfast.platform.service import run_service
from holdfast.platform.stripe_api import StripeConnection
from services.webhooks.config import WebhooksSettings
from services.webhooks.handlers import WebhookAdminHandler
from services.webhooks.metrics import WebhooksMetrics
from services.webhooks.processor import EventProcessor
from services.webhooks.receiver import create_receiver
from services.webhooks.repository import EventRepository
from services.webhooks.retention import InboxRetention

log = logging.getLogger(__name__)

SERVICE_NAME = webhook_admin_pb2.DESCRIPTOR.services_by_name["WebhookAdminService"].full_name
ERROR_DOMAIN = "webhooks.holdfast"


class WebhooksApp:
    """The webhook service's parts, started and stopped in the right order:
    the receiver stops first (Stripe redelivers what it could not hand over),
    then the processor finishes the event in hand."""

    def __init__(self, settings: WebhooksSettings) -> None:
        self.settings = settings
        self.metrics = WebhooksMetrics()
        self.pool: asyncpg.Pool | None = None
        PoolMetrics(self.metrics.registry, lambda: self.pool)
        self.stripe = StripeConnection(settings)
        self.booking_channel: grpc.aio.Channel | None = None
        self.processor: EventProcessor | None = None
        self.retention: InboxRetention | None = None
        self.http: HttpHost | None = None
        self.host: GrpcHost | None = None
        self.metrics_server = MetricsServer(
            self.metrics.registry, settings.metrics_host, settings.webhooks_metrics_port
        )
        self.database = DatabaseWatcher(
            settings,
            "holdfast-webhooks",
            self._database_changed,
            pool=lambda: self.pool,
            registry=self.metrics.registry,
        )
        self.parts = Lifecycle()
        self.parts.add("metrics", start=self.metrics_server.start, stop=self.metrics_server.stop)
        self.parts.add("stripe", stop=self.stripe.close)

    async def _database_changed(self, available: bool) -> None:
        # Without the inbox neither the receiver (it answers 503) nor the
        # admin service can work.
        if self.host is not None:
            await self.host.set_ready(available)

    @property
    def port(self) -> int:
        assert self.host is not None
        return self.host.port

    @property
    def http_port(self) -> int:
        assert self.http is not None
        return self.http.port

    async def start(self) -> None:
        s = self.settings
        self.pool = await create_pool(s, "holdfast-webhooks")
        self.parts.add("database pool", stop=self.pool.close)
        events = EventRepository(self.pool)
        self.booking_channel = open_channel(s.booking_target)
        self.parts.add("booking channel", stop=self.booking_channel.close)
        booking = cast(
            "booking_pb2_grpc.BookingServiceAsyncStub",
            booking_pb2_grpc.BookingServiceStub(self.booking_channel),
        )
        processor = EventProcessor(events, booking, self.stripe.client, s, self.metrics)
        self.processor = processor
        pages = PageTokens(await page_token_secret(self.pool, "webhooks"))
        self.host = self._grpc_host(WebhookAdminHandler(events, processor.wake, pages))
        self.retention = InboxRetention(events, s, self.metrics)
        self.http = HttpHost(
            create_receiver(s, events, self.metrics, processor.wake),
            s.webhooks_http_host,
            s.webhooks_http_port,
            s.shutdown_grace_seconds,
        )
        # Stopped in reverse: the receiver first (Stripe redelivers what it
        # could not hand over), then the admin calls drain, then the processor
        # finishes the event in hand.
        self.parts.add("inbox retention", start=self.retention.start, stop=self.retention.stop)
        self.parts.add("event processor", start=processor.start, stop=processor.stop)
        self.parts.add("database watcher", start=self.database.start, stop=self.database.stop)
        self.parts.add("admin calls", start=self.host.start, stop=self.host.stop)
        self.parts.add("receiver", start=self.http.start, stop=self.http.stop)
        await self.parts.start()

    def _grpc_host(self, admin: WebhookAdminHandler) -> GrpcHost:
        s = self.settings

        def register(server: object) -> None:
            webhook_admin_pb2_grpc.add_WebhookAdminServiceServicer_to_server(admin, server)

        return GrpcHost(
            service_names=(SERVICE_NAME,),
            register=register,
            error_domain=ERROR_DOMAIN,
            host=s.grpc_host,
            port=s.webhooks_port,
            grace_seconds=s.shutdown_grace_seconds,
            metrics=self.metrics.rpc,
        )

    async def stop(self) -> None:
        await self.parts.stop()


def main() -> None:
    settings = load(WebhooksSettings)
    run_service("webhooks", settings, lambda: WebhooksApp(settings))
