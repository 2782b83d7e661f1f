"""Webhook service settings (`HOLDFAST_*`)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from holdfast.platform.config import PlatformSettings
from holdfast.platform.stripe_api import StripeSettings


class WebhooksSettings(PlatformSettings, StripeSettings):
    # gRPC (WebhookAdminService, health) and the HTTP receiver Stripe calls.
    webhooks_port: int = Field(50053, ge=0, le=65535)
    webhooks_http_host: str = "0.0.0.0"  # noqa: S104 - Stripe reaches it from outside
    webhooks_http_port: int = Field(8081, ge=0, le=65535)
    webhooks_metrics_port: int = Field(9103, ge=-1, le=65535)
    # Worker processes sharing its ports on one host (holdfast.platform.workers).
    webhooks_workers: int = Field(1, ge=1, le=64)
    # Comma-separated signing secrets (whsec_...): during a rotation both the
    # old and the new one are listed, and an event signed with either passes.
    stripe_webhook_secrets: SecretStr
    # Stripe's own default: signatures older (or newer) than this are refused.
    webhook_tolerance_seconds: int = Field(300, gt=0)
    # Stripe's events are a few kB; anything far larger is not one.
    webhook_max_body_bytes: int = Field(256 * 1024, gt=0)
    # Where the booking service is; events are applied through its gRPC API.
    booking_target: str = "localhost:50051"
    booking_call_timeout_seconds: float = Field(10.0, gt=0)
    # The processor: concurrent workers, how often it looks for due events
    # besides being woken by each new one, and its retry budget.
    processor_workers: int = Field(4, gt=0)
    processor_poll_interval_seconds: float = Field(1.0, gt=0)
    processor_max_attempts: int = Field(8, gt=0)
    processor_retry_base_seconds: float = Field(1.0, gt=0)
    processor_retry_max_seconds: float = Field(300.0, gt=0)
    # Applied and ignored events are deleted this many days after receipt
    # (their payloads lost personal data when they were applied: see
    # services.webhooks.redaction). At least 4: an event id must outlive
    # Stripe's redeliveries (up to 3 days) to keep deduplicating them. Dead
    # letters stay until replayed and applied.
    stripe_event_retention_days: int = Field(30, ge=4)
    # How often the inbox is swept for events to delete (and for final events
    # stored before redaction existed, which are redacted then).
    stripe_event_sweep_interval_seconds: float = Field(3600.0, gt=0)

    @field_validator("stripe_webhook_secrets")
    @classmethod
    def _at_least_one_secret(cls, value: SecretStr) -> SecretStr:
        if not _split(value.get_secret_value()):
            raise ValueError("name at least one signing secret")
        return value

    @property
    def webhook_secrets(self) -> list[str]:
        return _split(self.stripe_webhook_secrets.get_secret_value())


def _split(secrets: str) -> list[str]:
    return [secret.strip() for secret in secrets.split(",") if secret.strip()]
