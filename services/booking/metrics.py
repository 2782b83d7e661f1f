"""The booking service's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from holdfast.platform.metrics import RpcMetrics

# Waits for slot row locks: from none (sub-millisecond) up to lock_timeout
# (2 s by default), which ends the wait with LOCK_TIMEOUT.
LOCK_WAIT_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5,
)  # fmt: skip


class BookingMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.rpc = RpcMetrics(self.registry)
        self._reservation_metrics()
        self._payment_metrics()
        self._outbox_metrics()

    def _reservation_metrics(self) -> None:
        """Holds and bookings."""
        self.holds = Counter(
            "holdfast_holds",
            "Hold requests by outcome: placed, replayed (a request_id seen before),"
            " sold_out, lock_timeout, unavailable, rejected (invalid, closed, not found), error",
            ["outcome"],
            registry=self.registry,
        )
        self.holds_expired = Counter(
            "holdfast_holds_expired",
            "Holds that lapsed and were expired, their capacity returned",
            registry=self.registry,
        )
        self.lock_wait = Histogram(
            "holdfast_hold_lock_wait_seconds",
            "Time spent acquiring the slots' row locks in a reservation transaction",
            buckets=LOCK_WAIT_BUCKETS,
            registry=self.registry,
        )
        self.bookings = Counter(
            "holdfast_bookings",
            "Booking state changes: confirmed, cancelled, refunded",
            ["transition"],
            registry=self.registry,
        )

    def _payment_metrics(self) -> None:
        """Stripe: refunds, failed checkouts, payment actions."""
        self.refunds = Counter(
            "holdfast_refunds",
            "Refunds Stripe answered, by cause (late_payment, cancellation, at_stripe) and"
            " outcome (succeeded; failed: Stripe refused, an operator must act)",
            ["cause", "outcome"],
            registry=self.registry,
        )
        self.checkouts_failed = Counter(
            "holdfast_checkouts_failed",
            "Payment attempts that ended FAILED: refused (Stripe refused the session)"
            " or declined (the payment was)",
            ["why"],
            registry=self.registry,
        )
        self.payment_actions = Counter(
            "holdfast_payment_actions",
            "Payment actions at Stripe (expiring checkouts) by outcome: done, dropped"
            " (refused for good, e.g. payments off), retried (Stripe failed or was too slow)",
            ["outcome"],
            registry=self.registry,
        )
        self.payment_actions_backlog = Gauge(
            "holdfast_payment_actions_backlog",
            "Payment actions not yet carried out (waiting, in flight or backing off)",
            registry=self.registry,
        )
        self.payment_actions_oldest_pending_seconds = Gauge(
            "holdfast_payment_actions_oldest_pending_seconds",
            "Age of the oldest payment action not yet carried out",
            registry=self.registry,
        )

    def _outbox_metrics(self) -> None:
        """The outbox: publishing and pruning."""
        self.outbox_published = Counter(
            "holdfast_outbox_published",
            "Outbox messages published to their stream",
            registry=self.registry,
        )
        self.outbox_publish_failures = Counter(
            "holdfast_outbox_publish_failures",
            "Outbox rows whose publish failed and was rescheduled",
            registry=self.registry,
        )
        self.outbox_backlog = Gauge(
            "holdfast_outbox_backlog",
            "Outbox messages (for the streams) not yet published",
            registry=self.registry,
        )
        self.outbox_oldest_pending_seconds = Gauge(
            "holdfast_outbox_oldest_pending_seconds",
            "Age of the oldest unpublished outbox message",
            registry=self.registry,
        )
        self.outbox_pruned = Counter(
            "holdfast_outbox_pruned",
            "Published outbox rows deleted after the retention period",
            registry=self.registry,
        )
