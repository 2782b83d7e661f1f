"""Answers availability: local cache, then Redis, then Postgres.

`CachedAnswers` is the machinery, for any kind of answer cached per resource
and span (`AnswerKind`): slot answers here (`AvailabilityReader`), windowed
resources' inputs in `services.availability.windows`. Both live under the
resource's generation, so one change message naming the resource drops both.

Each level is filled on the way back only under the version read before the
level below was asked (see services.availability.cache), so no fill can
resurrect what an invalidation dropped. While the invalidation consumer is not
live (Redis or its stream unreachable, or catching up) the caches could miss
an invalidation, so every answer comes from Postgres: slower, never stale.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

import asyncpg
from redis.exceptions import RedisError

from holdfast.contracts.availability.v1 import availability_pb2
from holdfast.platform.errors import DomainError, ErrorKind, FieldViolation, not_found
from holdfast.platform.proto_time import time_range, timestamp
from services.availability.cache import LocalCache, ResourceKey, SharedCache, SharedRead
from services.availability.metrics import AvailabilityMetrics
from services.availability.repository import AvailabilityRepository, TooManySlotsError

log = logging.getLogger(__name__)

ResourceAvailability = availability_pb2.ResourceAvailability
T = TypeVar("T")


def span_of(start: datetime, end: datetime) -> str:
    """The cache's name for a time range: both ends in epoch microseconds."""
    return f"{int(start.timestamp() * 1_000_000)}:{int(end.timestamp() * 1_000_000)}"


def to_message(
    resource_id: uuid.UUID, start: datetime, end: datetime, rows: Sequence[asyncpg.Record]
) -> ResourceAvailability:
    slots = [
        availability_pb2.SlotAvailability(
            slot_id=str(row["id"]),
            start_time=timestamp(row["starts_at"]),
            end_time=timestamp(row["ends_at"]),
            capacity=row["capacity"],
            available=0 if row["closed"] else row["capacity"] - row["held"] - row["booked"],
            held=row["held"],
            booked=row["booked"],
            open=not row["closed"],
        )
        for row in rows
    ]
    return ResourceAvailability(
        resource_id=str(resource_id), time_range=time_range(start, end), slots=slots
    )


def _as_stored(answer: bytes) -> bytes:
    return answer


@dataclass(frozen=True)
class AnswerKind(Generic[T]):
    """One kind of answer the caches hold per resource and span (slot
    answers, window inputs): how Postgres gives it and how it travels
    through Redis. `load` answers for each resource asked, or raises."""

    span: str
    load: Callable[[Sequence[uuid.UUID]], Awaitable[dict[uuid.UUID, T]]]
    decode: Callable[[bytes], T]
    encode: Callable[[T], bytes]
    type: type[T]


class CachedAnswers:
    """Local cache, then Redis, then Postgres, for any AnswerKind; Postgres
    alone while the invalidation consumer is not live or `fresh` asks."""

    def __init__(
        self,
        shared: SharedCache,
        local: LocalCache,
        metrics: AvailabilityMetrics,
        cache_live: Callable[[], bool],
    ) -> None:
        self._shared = shared
        self._local = local
        self._metrics = metrics
        # The invalidation consumer's state: the caches may be used only while
        # it is live, i.e. sure to see every invalidation.
        self._cache_live = cache_live

    async def read(
        self,
        tenant_id: str,
        resource_ids: Sequence[uuid.UUID],
        kind: AnswerKind[T],
        *,
        fresh: bool = False,
    ) -> list[T]:
        """The answer for each resource, in order. `fresh` reads Postgres
        whatever the caches hold."""
        bypass = "fresh" if fresh else "degraded" if not self._cache_live() else None
        if bypass is not None:
            self._metrics.cache_misses.labels(bypass).inc(len(resource_ids))
            found = await kind.load(resource_ids)
            return [found[r] for r in resource_ids]

        answers: dict[uuid.UUID, T] = {}
        # Local versions are taken before Redis is asked, shared ones (inside
        # SharedRead) before Postgres is: each fill is checked against them.
        ask_redis: list[tuple[uuid.UUID, tuple[int, int]]] = []
        # Resources whose invalidation is being applied: Redis may still hold
        # what it drops, Postgres already has the change (see LocalCache).
        ask_database: list[uuid.UUID] = []
        for resource_id in dict.fromkeys(resource_ids):
            key = (tenant_id, str(resource_id))
            if self._local.invalidating(key):
                ask_database.append(resource_id)
                continue
            cached = self._local.get(key, kind.span)
            if isinstance(cached, kind.type):
                self._metrics.local_hits.inc()
                answers[resource_id] = cached
            else:
                ask_redis.append((resource_id, self._local.version(key)))
        if ask_database:
            self._metrics.cache_misses.labels("invalidating").inc(len(ask_database))
            answers.update(await kind.load(ask_database))
        if ask_redis:
            await self._through_redis(tenant_id, ask_redis, kind, answers)
        return [answers[r] for r in resource_ids]

    async def _through_redis(
        self,
        tenant_id: str,
        wanted: list[tuple[uuid.UUID, tuple[int, int]]],
        kind: AnswerKind[T],
        answers: dict[uuid.UUID, T],
    ) -> None:
        span = kind.span
        keys: list[ResourceKey] = [(tenant_id, str(r)) for r, _ in wanted]
        try:
            seen = await self._shared.get_many(keys, span)
        except RedisError as error:
            self._redis_failed(error)
            self._metrics.cache_misses.labels("degraded").inc(len(wanted))
            answers.update(await kind.load([r for r, _ in wanted]))
            return

        misses: list[tuple[uuid.UUID, ResourceKey, tuple[int, int], SharedRead]] = []
        for (resource_id, local_version), key, read in zip(wanted, keys, seen, strict=True):
            if read.value is None:
                misses.append((resource_id, key, local_version, read))
                continue
            self._metrics.redis_hits.inc()
            answer = kind.decode(read.value)
            self._local.put(key, span, answer, local_version)
            answers[resource_id] = answer
        if not misses:
            return

        self._metrics.cache_misses.labels("miss").inc(len(misses))
        found = await kind.load([m[0] for m in misses])
        fills: list[tuple[ResourceKey, SharedRead, bytes]] = []
        for resource_id, key, local_version, read in misses:
            answer = found[resource_id]
            answers[resource_id] = answer
            fills.append((key, read, kind.encode(answer)))
            self._local.put(key, span, answer, local_version)
        try:
            await self._shared.put_many(fills, span)
        except RedisError as error:
            self._redis_failed(error)

    def _redis_failed(self, error: RedisError) -> None:
        # The consumer notices an outage on its own and turns the caches off;
        # this request just answers from Postgres.
        self._metrics.cache_errors.inc()
        log.warning("availability cache unavailable for this request: %s", error)


class AvailabilityReader:
    """Slot answers, through CachedAnswers."""

    def __init__(
        self,
        repository: AvailabilityRepository,
        shared: SharedCache,
        local: LocalCache,
        metrics: AvailabilityMetrics,
        max_slots: int,
        cache_live: Callable[[], bool],
    ) -> None:
        self._repository = repository
        self._max_slots = max_slots
        self._cached = CachedAnswers(shared, local, metrics, cache_live)

    async def read(
        self,
        tenant_id: str,
        resource_ids: Sequence[uuid.UUID],
        start: datetime,
        end: datetime,
        *,
        fresh: bool = False,
    ) -> list[ResourceAvailability]:
        """Availability of each resource, in order; NOT_FOUND if any is unknown.
        `fresh` reads Postgres whatever the caches hold."""
        found = await self.read_serialized(tenant_id, resource_ids, start, end, fresh=fresh)
        return [ResourceAvailability.FromString(answer) for answer in found]

    async def read_serialized(
        self,
        tenant_id: str,
        resource_ids: Sequence[uuid.UUID],
        start: datetime,
        end: datetime,
        *,
        fresh: bool = False,
    ) -> list[bytes]:
        """As `read`, each answer a serialized ResourceAvailability: what both
        cache levels hold, so a hit is answered without parsing or building a
        message (see services.availability.wire)."""

        async def load(ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, bytes]:
            found = await self._from_database(tenant_id, ids, start, end)
            return {r: answer.SerializeToString() for r, answer in found.items()}

        kind = AnswerKind(span_of(start, end), load, _as_stored, _as_stored, bytes)
        return await self._cached.read(tenant_id, resource_ids, kind, fresh=fresh)

    async def _from_database(
        self, tenant_id: str, resource_ids: Sequence[uuid.UUID], start: datetime, end: datetime
    ) -> dict[uuid.UUID, ResourceAvailability]:
        try:
            rows = await self._repository.read_slots(
                tenant_id, resource_ids, start, end, self._max_slots
            )
        except TooManySlotsError as error:
            message = (
                f"resource {error.resource_id} has more than {self._max_slots} slots in this"
                " range; ask for a shorter one"
            )
            raise DomainError(
                ErrorKind.INVALID_ARGUMENT,
                "TOO_MANY_SLOTS",
                message,
                {"resource_id": str(error.resource_id), "max_slots": str(self._max_slots)},
                violations=(FieldViolation("time_range", message),),
            ) from None
        for resource_id in resource_ids:
            if resource_id not in rows:
                raise not_found("resource", str(resource_id))
        return {r: to_message(r, start, end, rows[r]) for r in resource_ids}
