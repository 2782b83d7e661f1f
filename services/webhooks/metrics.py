"""The webhook service's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from holdfast.platform.metrics import LATENCY_BUCKETS, RpcMetrics


class WebhooksMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.rpc = RpcMetrics(self.registry)
        self.acknowledged = Histogram(
            "holdfast_webhook_ack_seconds",
            "Time to answer a webhook delivery, by HTTP status",
            ["status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.received = Counter(
            "holdfast_webhook_events_received",
            "Verified events stored for the first time, by type",
            ["type"],
            registry=self.registry,
        )
        self.processed = Counter(
            "holdfast_webhook_events_processed",
            "Attempts at applying events, by type and how they ended",
            ["type", "status"],
            registry=self.registry,
        )
        self.processing = Histogram(
            "holdfast_webhook_processing_seconds",
            "Time to apply one event (one attempt)",
            ["type"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.retries = Counter(
            "holdfast_webhook_retries",
            "Attempts that failed and were scheduled again",
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "holdfast_webhook_dead_letters",
            "Events dead-lettered: retries ran out or they can never apply",
            registry=self.registry,
        )
        self.dead_letter_backlog = Gauge(
            "holdfast_webhook_dead_letter_backlog",
            "Events now waiting in the dead letter state",
            registry=self.registry,
        )
        self.refunds = Counter(
            "holdfast_webhook_refunds",
            "Payments refunded because they could not become bookings",
            registry=self.registry,
        )
        self.events_redacted = Counter(
            "holdfast_webhook_events_redacted",
            "Final events whose payload was cut down to the allow-list by the sweep"
            " (stored before redaction existed); others are redacted as they are applied",
            registry=self.registry,
        )
        self.events_deleted = Counter(
            "holdfast_webhook_events_deleted",
            "Applied or ignored events deleted after the retention",
            registry=self.registry,
        )
