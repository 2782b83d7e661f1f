"""The Stripe client the services share, built from settings.

Everything goes through the `stripe` package's own client; only its API base
changes when the local fake Stripe stands in (`make up`, the tests). Every call
is bounded by a timeout, and the client's own retries of network failures
reuse the request's idempotency key, as Stripe recommends.
"""

from __future__ import annotations

import stripe
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class StripeSettings(BaseSettings):
    """`HOLDFAST_STRIPE_*`: how to reach Stripe (or the local fake)."""

    model_config = SettingsConfigDict(env_prefix="HOLDFAST_", extra="ignore")

    # Unset: payments are off and the payment calls answer FAILED_PRECONDITION.
    stripe_api_key: SecretStr | None = None
    # Unset means Stripe itself; the local fake sets e.g. http://127.0.0.1:12111.
    stripe_api_base: str | None = None
    stripe_timeout_seconds: float = Field(10.0, gt=0)
    stripe_max_network_retries: int = Field(2, ge=0, le=5)


class StripeConnection:
    """A Stripe client and the HTTP connection pool under it, closed together."""

    def __init__(self, settings: StripeSettings) -> None:
        key = settings.stripe_api_key
        base = settings.stripe_api_base
        self._http = stripe.HTTPXClient(timeout=settings.stripe_timeout_seconds)
        # None when payments are off (no key configured).
        self.client: stripe.StripeClient | None = (
            stripe.StripeClient(
                key.get_secret_value(),
                base_addresses={"api": base.rstrip("/")} if base else None,
                http_client=self._http,
                max_network_retries=settings.stripe_max_network_retries,
            )
            if key is not None
            else None
        )

    async def close(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]
