"""Availability service settings (`HOLDFAST_*`)."""

from __future__ import annotations

from pydantic import Field

from holdfast.platform.config import PlatformSettings


class AvailabilitySettings(PlatformSettings):
    availability_port: int = Field(50052, ge=0, le=65535)
    availability_metrics_port: int = Field(9102, ge=-1, le=65535)
    # Worker processes sharing its ports on one host (holdfast.platform.workers).
    availability_workers: int = Field(1, ge=1, le=64)
    # Where to read slots; a read replica works. Defaults to HOLDFAST_DATABASE_URL.
    availability_database_url: str | None = None
    # Longest range one call may ask for, and most resources in one batch.
    max_range_days: int = Field(62, gt=0)
    max_batch_resources: int = Field(50, gt=0)
    # A range holding more slots than this is refused: ask for a shorter one.
    max_slots_per_resource: int = Field(5000, gt=0)
    # Only a safety net: invalidation messages keep the cache exact.
    cache_ttl_seconds: int = Field(300, gt=0)
    # The in-process first level (entries, LRU); 0 turns it off.
    local_cache_entries: int = Field(10_000, ge=0)
    # How long one blocking stream read waits for new messages.
    consumer_block_ms: int = Field(1000, gt=0)
    consumer_batch_size: int = Field(500, gt=0)
    consumer_retry_max_seconds: float = Field(5.0, gt=0)

    @property
    def read_database_url(self) -> str:
        return self.availability_database_url or self.database_url
