"""The two cache levels: shared in Redis, and a small one in each process.

**Shared (Redis), versioned keys.** An entry's key names the cache *epoch*
and the resource's *generation* it was computed at:

    <prefix>:av:c:<tenant>:<resource>:<epoch>:<generation>:<start>:<end>

A reader fetches epoch, generation and entry in one atomic script call. On a
miss it reads Postgres and writes the entry under the key it read. An
invalidation increments the resource's generation (`INCR`); dropping the whole
cache increments the epoch. Either way, later readers look under a new key, so
a slow reader that read Postgres before a change and writes after its
invalidation only writes under a key nobody reads any more: an invalidation
can never be undone. Old entries are left to their TTL, which is only a
safety net for memory, never for correctness.

All keys are on one Redis (primary with replicas), not Redis Cluster: the
read script builds the entry key from the values it reads.

**Local (in-process), LRU.** Answers without a Redis round trip. It is only
consulted while this process's invalidation consumer is live, every message
drops the resource's entries, and a reader stores what it fetched only if no
invalidation for that resource arrived since it started (a per-resource
version, checked on write) — the same guarantee as above, in memory.

A change shows as soon as its message arrives, not one Redis round trip
later: from arrival until the new generation is written, the resource is
*invalidating* and its readers go to Postgres (which committed the change
before the message was sent), past both levels. Its entries are dropped and
its version bumped at both ends, so nothing read before the new generation
is stored locally.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from holdfast.platform.config import PlatformSettings
from holdfast.platform.redis import redis_key

ResourceKey = tuple[str, str]  # (tenant, resource id)

_READ = """
local epoch = redis.call('GET', KEYS[1]) or '0'
local generation = redis.call('GET', KEYS[2]) or '0'
local value = redis.call('GET', ARGV[1] .. epoch .. ':' .. generation .. ':' .. ARGV[2])
return {epoch, generation, value}
"""


@dataclass(frozen=True)
class SharedRead:
    """What one shared-cache lookup saw: the entry (if any) and the key version."""

    epoch: bytes
    generation: bytes
    value: bytes | None


class SharedCache:
    def __init__(self, redis: Redis, settings: PlatformSettings, ttl_seconds: int) -> None:
        self._redis = redis
        self._prefix = redis_key(settings, "av")
        self.epoch_key = f"{self._prefix}:epoch"
        # The newest stream entry some replica has applied to this cache.
        self.applied_key = f"{self._prefix}:applied"
        self._ttl = ttl_seconds
        self._read_sha = hashlib.sha1(_READ.encode()).hexdigest()  # noqa: S324 - Redis's script id

    def _generation_key(self, resource: ResourceKey) -> str:
        return f"{self._prefix}:gen:{resource[0]}:{resource[1]}"

    def _entry_prefix(self, resource: ResourceKey) -> str:
        return f"{self._prefix}:c:{resource[0]}:{resource[1]}:"

    async def get_many(self, resources: list[ResourceKey], span: str) -> list[SharedRead]:
        """Looks up one time span (`span`) for each resource, in one round trip.

        The script is called by its digest directly: redis-py's Script objects
        would ask SCRIPT EXISTS first, a second round trip on every read. Only
        when Redis does not know the script (it restarted) is it loaded again.
        """
        try:
            results = await self._read_pipelined(resources, span)
        except NoScriptError:
            await self._redis.script_load(_READ)
            results = await self._read_pipelined(resources, span)
        return [SharedRead(epoch, generation, value) for epoch, generation, value in results]

    async def _read_pipelined(self, resources: list[ResourceKey], span: str) -> list[Any]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for resource in resources:
                pipe.evalsha(
                    self._read_sha,
                    2,
                    self.epoch_key,
                    self._generation_key(resource),
                    self._entry_prefix(resource),
                    span,
                )
            results: list[Any] = await pipe.execute()
        return results

    async def put_many(
        self, entries: list[tuple[ResourceKey, SharedRead, bytes]], span: str
    ) -> None:
        """Stores values under the key version each was read at."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for resource, seen, value in entries:
                key = (
                    f"{self._entry_prefix(resource)}{seen.epoch.decode()}:"
                    f"{seen.generation.decode()}:{span}"
                )
                pipe.set(key, value, ex=self._ttl)
            await pipe.execute()

    async def invalidate(self, resources: set[ResourceKey], applied_id: str) -> None:
        """New generations for these resources; records the stream entry applied."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for resource in sorted(resources):
                pipe.incr(self._generation_key(resource))
            pipe.set(self.applied_key, applied_id)
            await pipe.execute()

    async def drop_all(self) -> None:
        """A new epoch: every entry cached so far is unreachable."""
        await self._redis.incr(self.epoch_key)


class LocalCache:
    """An LRU of answers per (tenant, resource, span), invalidated by messages."""

    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._entries: OrderedDict[tuple[ResourceKey, str], object] = OrderedDict()
        self._spans: dict[ResourceKey, set[str]] = {}
        # Bumped by each invalidation of a resource (and all of them by clear()),
        # so a reader can tell whether one arrived while it was fetching.
        self._versions: dict[ResourceKey, int] = {}
        self._epoch = 0
        self._invalidating: set[ResourceKey] = set()

    @property
    def enabled(self) -> bool:
        return self._max > 0

    def version(self, resource: ResourceKey) -> tuple[int, int]:
        return self._epoch, self._versions.get(resource, 0)

    def get(self, resource: ResourceKey, span: str) -> object | None:
        value = self._entries.get((resource, span))
        if value is not None:
            self._entries.move_to_end((resource, span))
        return value

    def put(self, resource: ResourceKey, span: str, value: object, seen: tuple[int, int]) -> bool:
        """Stores `value` unless the resource was invalidated since `seen`."""
        if not self.enabled or self.version(resource) != seen:
            return False
        self._entries[(resource, span)] = value
        self._entries.move_to_end((resource, span))
        self._spans.setdefault(resource, set()).add(span)
        while len(self._entries) > self._max:
            (old_resource, old_span), _ = self._entries.popitem(last=False)
            spans = self._spans.get(old_resource)
            if spans is not None:
                spans.discard(old_span)
                if not spans:
                    del self._spans[old_resource]
        return True

    def invalidate(self, resource: ResourceKey) -> None:
        self._versions[resource] = self._versions.get(resource, 0) + 1
        for span in self._spans.pop(resource, ()):
            self._entries.pop((resource, span), None)

    def invalidating(self, resource: ResourceKey) -> bool:
        """Whether an invalidation of `resource` is being applied: the shared
        level may still hold what it drops, so read Postgres."""
        return resource in self._invalidating

    def begin_invalidation(self, resources: set[ResourceKey]) -> None:
        self._invalidating |= resources
        for resource in resources:
            self.invalidate(resource)

    def end_invalidation(self, resources: set[ResourceKey]) -> None:
        """The shared level has the new generations (or the caches are being
        turned off): readers may use both levels again; whatever was stored
        in between is dropped."""
        self._invalidating -= resources
        for resource in resources:
            self.invalidate(resource)

    def clear(self) -> None:
        self._epoch += 1
        self._versions.clear()
        self._entries.clear()
        self._spans.clear()
