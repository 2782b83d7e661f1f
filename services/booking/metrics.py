"""The booking service's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from holdfast.platform.metrics import RpcMetrics


class BookingMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.rpc = RpcMetrics(self.registry)
        self.outbox_published = Counter(
            "holdfast_outbox_published",
            "Outbox rows published to their stream",
            registry=self.registry,
        )
        self.outbox_publish_failures = Counter(
            "holdfast_outbox_publish_failures",
            "Outbox rows whose publish failed and was rescheduled",
            registry=self.registry,
        )
        self.outbox_backlog = Gauge(
            "holdfast_outbox_backlog",
            "Outbox rows not yet published",
            registry=self.registry,
        )
        self.outbox_oldest_pending_seconds = Gauge(
            "holdfast_outbox_oldest_pending_seconds",
            "Age of the oldest unpublished outbox row",
            registry=self.registry,
        )
        self.outbox_pruned = Counter(
            "holdfast_outbox_pruned",
            "Published outbox rows deleted after the retention period",
            registry=self.registry,
        )
