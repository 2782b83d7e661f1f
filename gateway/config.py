"""Gateway settings (`HOLDFAST_*`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from holdfast.platform.config import PlatformSettings


class GatewaySettings(PlatformSettings):
    gateway_host: str = "0.0.0.0"  # noqa: S104 - frontends reach it from outside
    gateway_port: int = Field(8080, ge=0, le=65535)
    # Worker processes sharing its ports on one host (holdfast.platform.workers).
    gateway_workers: int = Field(1, ge=1, le=64)
    booking_target: str = "localhost:50051"
    availability_target: str = "localhost:50052"
    # Every downstream call gets this deadline; a slower answer is a 504.
    request_timeout_seconds: float = Field(5.0, gt=0)
    # JSON bodies of the API are small; anything larger is refused (413).
    max_body_bytes: int = Field(64 * 1024, gt=0)
    # Comma-separated origins allowed by CORS ("" = none, "*" = any).
    cors_origins: str = ""
    # Rate limits (GCRA in Redis): requests per period, of which a full
    # period's worth may come at once, per API key (unless the key has its
    # own) and per client address.
    rate_limit_per_key: int = Field(50, gt=0)
    rate_limit_per_address: int = Field(100, gt=0)
    # The period the limits count in: a second, unless an operator wants,
    # say, 6000 a minute (a burst of up to 6000) rather than 100 a second.
    rate_limit_period_seconds: float = Field(1.0, gt=0)
    # When Redis cannot be asked: "open" lets requests through (availability
    # over protection; counted in holdfast_gateway_rate_limit_unchecked),
    # "closed" refuses them with 503.
    rate_limit_when_redis_down: Literal["open", "closed"] = "open"
    # Proxies whose X-Forwarded-For names the client (for the per-address
    # limit): comma-separated addresses, or "*". Only set what is yours.
    trusted_proxies: str = "127.0.0.1"
    # How long a looked-up API key is trusted before it is read again: a
    # revocation takes effect within this.
    key_cache_seconds: float = Field(10.0, ge=0)
    # While Postgres (the key store) is unreachable, a key read within this
    # long past its cache time is still taken as last read; 0 turns it off.
    # A revocation made during an outage takes effect when Postgres is back.
    key_outage_grace_seconds: float = Field(300.0, ge=0)
    # Where the services reach Stripe (the same variable as theirs; the
    # gateway itself never calls it). Set, /readyz reports whether Stripe
    # answers, without a key; unset, Stripe is left out of /readyz.
    stripe_api_base: str | None = None
    # Server-Sent Events: a comment line this often keeps proxies from
    # closing an idle stream.
    sse_heartbeat_seconds: float = Field(15.0, gt=0)
    # Streams one API key may hold open at once on one gateway process; the
    # next is a 429. Each holds a connection and a subscription.
    sse_max_streams_per_key: int = Field(20, ge=1)
