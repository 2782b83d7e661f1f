"""How a fake Stripe is set up: in code (`FakeStripeConfig`), or from the
environment and the command line (`FakeStripeSettings`, `HOLDFAST_FAKE_STRIPE_*`)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from devtools.fakestripe.delivery import RetryPolicy
from devtools.fakestripe.events import CHECKOUT_EVENTS

DEFAULT_API_KEY = "sk_test_holdfast_fake"
DEFAULT_WEBHOOK_SECRET = "whsec_holdfast_fake"  # noqa: S105 - a public local default
# stripe-mock's port, so the usual local setup finds it.
DEFAULT_PORT = 12111
# The version stripe-python 16.1 sends (stripe._api_version.CURRENT); events
# carry it as Stripe's carry the endpoint's version.
API_VERSION = "2026-10-28.endive"


@dataclass(frozen=True)
class FakeStripeConfig:
    # Any of these is accepted as `Authorization: Bearer <key>`; idempotency
    # keys are scoped to the API key that sent them.
    api_keys: tuple[str, ...] = (DEFAULT_API_KEY,)
    host: str = "127.0.0.1"
    # 0 picks a free port.
    port: int = 0
    # Where events are posted; None keeps them (listable, deliverable on
    # request) without sending. Changeable later: FakeStripe.configure_webhook.
    webhook_url: str | None = None
    webhook_secret: str = DEFAULT_WEBHOOK_SECRET
    # The event types the endpoint receives ("*": all). Stripe creates the
    # others too (charge.refunded, payment_intent.succeeded...): listed, not sent.
    enabled_events: Collection[str] = CHECKOUT_EVENTS
    api_version: str = API_VERSION
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # How often open sessions past their expires_at are expired.
    expiry_sweep_seconds: float = 1.0
    # The address customers' browsers reach the fake at (the `url` of a
    # session); unset, the address the API request came to.
    public_url: str | None = None

    def __post_init__(self) -> None:
        if not self.api_keys:
            raise ValueError("at least one API key is needed")


class FakeStripeSettings(BaseSettings):
    """`HOLDFAST_FAKE_STRIPE_*`, for `python -m devtools.fakestripe`."""

    model_config = SettingsConfigDict(env_prefix="HOLDFAST_FAKE_STRIPE_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(DEFAULT_PORT, ge=0, le=65535)
    # Comma-separated when there are several.
    api_key: str = DEFAULT_API_KEY
    webhook_url: str | None = None
    webhook_secret: str = DEFAULT_WEBHOOK_SECRET
    # Comma-separated event types, or "*".
    enabled_events: str = ",".join(sorted(CHECKOUT_EVENTS))
    api_version: str = API_VERSION
    max_attempts: int = Field(4, ge=1)
    retry_backoff_seconds: float = Field(0.5, ge=0)
    retry_max_backoff_seconds: float = Field(8.0, ge=0)
    delivery_timeout_seconds: float = Field(10.0, gt=0)
    expiry_sweep_seconds: float = Field(1.0, gt=0)
    public_url: str | None = None
    log_level: str = "INFO"

    def config(self) -> FakeStripeConfig:
        return FakeStripeConfig(
            api_keys=_split(self.api_key),
            host=self.host,
            port=self.port,
            webhook_url=self.webhook_url or None,
            webhook_secret=self.webhook_secret,
            enabled_events=frozenset(_split(self.enabled_events)),
            api_version=self.api_version,
            retry=RetryPolicy(
                max_attempts=self.max_attempts,
                backoff_seconds=self.retry_backoff_seconds,
                max_backoff_seconds=self.retry_max_backoff_seconds,
                timeout_seconds=self.delivery_timeout_seconds,
            ),
            expiry_sweep_seconds=self.expiry_sweep_seconds,
            public_url=self.public_url or None,
        )


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())
