"""Booking service settings (`HOLDFAST_*`)."""

from __future__ import annotations

import uuid
from typing import Self

from pydantic import Field, model_validator

from holdfast.platform.config import PlatformSettings
from holdfast.platform.stripe_api import StripeSettings
from holdfast.platform.stripe_limits import url_problem


class BookingSettings(PlatformSettings, StripeSettings):
    booking_port: int = Field(50051, ge=0, le=65535)
    # A reservation waits at most this long for a slot row lock, then answers
    # ABORTED with a retry hint instead of queueing without bound.
    lock_timeout_ms: int = Field(2000, gt=0)
    hold_ttl_default_seconds: int = Field(600, gt=0)
    hold_ttl_min_seconds: int = Field(10, gt=0)
    hold_ttl_max_seconds: int = Field(3600, gt=0)
    max_quantity: int = Field(1000, gt=0)
    max_slots_per_hold: int = Field(100, gt=0)
    max_slots_per_request: int = Field(1000, gt=0)
    sweeper_interval_seconds: float = Field(1.0, gt=0)
    sweeper_batch_size: int = Field(500, gt=0)
    # How long a request_id answers with its first response (AIP-155).
    request_id_retention_hours: int = Field(24, gt=0)
    booking_metrics_port: int = Field(9101, ge=-1, le=65535)
    # Worker processes sharing its ports on one host (holdfast.platform.workers).
    booking_workers: int = Field(1, ge=1, le=64)
    # The outbox relay: woken by every commit, and polling this often for rows
    # left by a replica that died or waiting for a retry.
    relay_poll_interval_seconds: float = Field(1.0, gt=0)
    relay_batch_size: int = Field(200, gt=0)
    # A claimed message is published again by any relay after this long if
    # its claimer never said how it went (it died): at-least-once delivery.
    # Short, so a dead replica's claims delay availability only briefly; it
    # must outlast one publish (the Redis timeout, twice with the retry). A
    # restarted relay does not wait: it releases the claims it finds.
    relay_lease_seconds: float = Field(5.0, gt=0)
    relay_retry_base_seconds: float = Field(0.2, gt=0)
    relay_retry_max_seconds: float = Field(10.0, gt=0)
    # Payment actions (expiring the Stripe checkout of a hold that lapsed or
    # was released) run apart from the relay, so a slow or down Stripe never
    # delays availability messages: this many calls at once, each given up
    # after the timeout (shorter than the lease, so no other replica starts it
    # meanwhile) and retried with backoff; due actions are looked for every
    # poll interval. While Stripe fails, no new action starts until the
    # backoff has passed.
    payment_action_concurrency: int = Field(4, gt=0)
    payment_action_timeout_seconds: float = Field(25.0, gt=0)
    payment_action_lease_seconds: float = Field(30.0, gt=0)
    payment_action_poll_interval_seconds: float = Field(1.0, gt=0)
    payment_action_retry_base_seconds: float = Field(1.0, gt=0)
    payment_action_retry_max_seconds: float = Field(60.0, gt=0)
    # Published rows are kept this long (for operators), then deleted: every
    # prune interval, batch after batch until less than a batch is left (a
    # pass stops after an interval's time, and the next one goes on).
    outbox_retention_seconds: float = Field(3600.0, ge=0)
    outbox_prune_interval_seconds: float = Field(10.0, gt=0)
    outbox_prune_batch_size: int = Field(5000, gt=0)
    # Stream entries beyond this many are trimmed (approximately); consumers
    # further behind than that drop their caches.
    stream_max_length: int = Field(100_000, gt=0)
    # Checkout: where Stripe sends the customer afterwards ({HOLD_ID} is
    # replaced), and the shortest session Stripe allows plus a margin.
    checkout_success_url: str = "http://localhost:8080/checkout/success?hold={HOLD_ID}"
    checkout_cancel_url: str = "http://localhost:8080/checkout/cancelled?hold={HOLD_ID}"
    checkout_min_lifetime_seconds: int = Field(31 * 60, ge=30 * 60, le=24 * 3600)
    # The reconciler asks Stripe about checkouts this close to lapsing (or
    # past it), every interval, a batch at a time, fairly across tenants. An
    # attempt it looked at without settling it is looked at again after the
    # base delay, doubling each time up to the max.
    reconciler_interval_seconds: float = Field(30.0, gt=0)
    reconciler_lead_seconds: float = Field(60.0, ge=0)
    reconciler_batch_size: int = Field(50, gt=0)
    reconciler_retry_base_seconds: float = Field(30.0, gt=0)
    reconciler_retry_max_seconds: float = Field(3600.0, gt=0)
    # A refund recorded but not yet made at Stripe (its maker crashed or could
    # not reach Stripe) is made by the reconciler after this long.
    refund_retry_delay_seconds: float = Field(60.0, ge=0)

    @model_validator(mode="after")
    def _ttl_bounds_are_ordered(self) -> Self:
        if not (
            self.hold_ttl_min_seconds <= self.hold_ttl_default_seconds <= self.hold_ttl_max_seconds
        ):
            raise ValueError(
                "need HOLD_TTL_MIN_SECONDS <= HOLD_TTL_DEFAULT_SECONDS <= HOLD_TTL_MAX_SECONDS"
            )
        return self

    @model_validator(mode="after")
    def _checkout_urls_are_stripes(self) -> Self:
        """Stripe refuses every checkout sent to a URL it does not take: better
        not to start than to fail every payment."""
        sample = str(uuid.UUID(int=0))
        for name in ("checkout_success_url", "checkout_cancel_url"):
            problem = url_problem(getattr(self, name).replace("{HOLD_ID}", sample))
            if problem is not None:
                raise ValueError(f"HOLDFAST_{name.upper()} {problem}")
        return self

    @model_validator(mode="after")
    def _payment_actions_end_within_their_lease(self) -> Self:
        if self.payment_action_timeout_seconds >= self.payment_action_lease_seconds:
            raise ValueError(
                "need PAYMENT_ACTION_TIMEOUT_SECONDS < PAYMENT_ACTION_LEASE_SECONDS: an action"
                " still running when its lease ends would be started again by another replica"
            )
        return self

    @model_validator(mode="after")
    def _messages_are_published_within_their_lease(self) -> Self:
        if self.relay_lease_seconds <= 2 * self.redis_timeout_seconds:
            raise ValueError(
                "need RELAY_LEASE_SECONDS > 2 * REDIS_TIMEOUT_SECONDS: a publish still"
                " waiting for Redis when its lease ends would be published again meanwhile"
            )
        return self
