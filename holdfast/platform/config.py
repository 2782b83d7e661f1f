"""Settings read once from `HOLDFAST_*` environment variables.

Every process builds its settings at start-up through `load`, which turns a
validation failure into one readable message and exit code 2 instead of a
traceback, so a misconfigured pod fails fast and says why.
"""

from __future__ import annotations

import sys
from typing import TypeVar

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


class PlatformSettings(BaseSettings):
    """What every service needs: its database, logging and gRPC serving."""

    model_config = SettingsConfigDict(env_prefix="HOLDFAST_", extra="ignore")

    database_url: str = Field(description="PostgreSQL DSN, e.g. postgresql://user@host/db")
    db_pool_min_size: int = Field(2, ge=0)
    db_pool_max_size: int = Field(20, ge=1)
    db_connect_timeout_seconds: float = Field(5.0, gt=0)
    # Client-side bound on each query; the server-side statement_timeout is
    # slightly shorter so Postgres cancels the work before the client gives up.
    db_command_timeout_seconds: float = Field(10.0, gt=0)
    db_statement_timeout_ms: int = Field(8000, gt=0)
    # Readiness: the database is pinged this often (each ping bounded by as
    # long, 1 s at least); once every ping failed for db_unready_after_seconds
    # the service's gRPC services report NOT_SERVING (liveness, the "" entry,
    # stays SERVING) until a ping is answered again.
    db_health_interval_seconds: float = Field(1.0, gt=0)
    db_unready_after_seconds: float = Field(3.0, ge=0)
    redis_url: str = Field(description="Redis URL, e.g. redis://host:6379/0")
    # Every key and stream the services use starts with this, so several
    # deployments (or test runs) can share one Redis without meeting.
    redis_prefix: str = Field("holdfast", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    # Redis is a cache and a message bus here, never the source of truth: a
    # call that takes longer than this counts as Redis being down.
    redis_timeout_seconds: float = Field(1.0, gt=0)
    # Prometheus text exposition; 0 picks a free port, -1 turns it off.
    metrics_host: str = "0.0.0.0"  # noqa: S104 - scraped from outside the container
    log_level: str = "INFO"
    # One log line per gRPC call and HTTP request (trace and correlation ids
    # included); off trims a few percent of CPU on the hottest reads.
    access_log: bool = True
    grpc_host: str = "0.0.0.0"  # noqa: S104 - services listen on every interface in containers
    shutdown_grace_seconds: float = Field(10.0, ge=0)


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def load(settings_class: type[SettingsT]) -> SettingsT:
    """Builds settings from the environment or exits with a clear message."""
    try:
        return settings_class()
    except ValidationError as exc:
        prefix = str(settings_class.model_config.get("env_prefix", "")).upper()
        lines = [f"invalid configuration for {settings_class.__name__}:"]
        for error in exc.errors():
            name = prefix + "_".join(str(part) for part in error["loc"]).upper()
            lines.append(f"  {name}: {error['msg']}")
        print("\n".join(lines), file=sys.stderr)
        raise SystemExit(2) from None
