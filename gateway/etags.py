"""Conditional reads of slot availability: an ETag that names the answer's
tenant, resource, window and the resource's version in the availability
stream (gateway.changes), and 304 Not Modified for an If-None-Match that
still names it, without asking the availability service.

Exact, not approximately fresh: every change to a resource's availability
(hold, release, expiry, confirmation, cancellation, inventory) is a message
on the stream, so a new message is a new version and the old tag stops
matching. A tag is only given, and only matched, while the ledger is sure it
has read the stream to its end; the answer it is given with was read with
the version's change id as `min_change_id`, so it reflects at least that
change. The tenant is hashed into the tag: one tenant's tag never matches
another's answer.

Window availability (/window-availability) carries no ETag: its answer
changes with the clock alone (a start moves inside the lead time) with no
message on the stream.
"""

from __future__ import annotations

import base64
import hashlib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from fastapi import Response

from gateway.changes import ChangeLedger, Version

# Names the answer's JSON layout: changing it must change every tag.
_LAYOUT = "availability.v1"
JSON = "application/json"
# Every client may keep the answer, and must ask again before reusing it:
# shared caches must not serve one tenant's answer to another.
_CACHE_CONTROL = "private, no-cache"


def availability_tag(
    version: Version, tenant: str, resource_id: str, start: datetime, end: datetime
) -> str:
    text = "|".join(
        (
            _LAYOUT,
            version.epoch,
            version.change_id,
            tenant,
            resource_id,
            start.isoformat(),
            end.isoformat(),
        )
    )
    digest = hashlib.blake2b(text.encode(), digest_size=18).digest()
    return f'"{base64.urlsafe_b64encode(digest).decode()}"'


def change_to_include(version: Version | None) -> str:
    """The `min_change_id` of the read a tag goes with: the version's change
    ("" when there is none, or the stream had no entry at all)."""
    if version is None or version.change_id == "0-0":
        return ""
    return version.change_id


def matches(if_none_match: str | None, tag: str) -> bool:
    """Whether an If-None-Match header names `tag` (weak comparison, as RFC
    9110 asks for If-None-Match; `*` is not taken, the answer is sent)."""
    if not if_none_match:
        return False
    return any(
        candidate.strip().removeprefix("W/") == tag for candidate in if_none_match.split(",")
    )


def not_modified(tag: str, headers: Mapping[str, str]) -> Response:
    """304 with the tag and `headers` (the rate limits')."""
    return Response(
        status_code=304, headers={**headers, "ETag": tag, "Cache-Control": _CACHE_CONTROL}
    )


def json_answer(body: bytes, tag: str | None, headers: Mapping[str, str]) -> Response:
    """200 with `body` (JSON), tagged if there is a tag, and `headers`."""
    tagged = {} if tag is None else {"ETag": tag, "Cache-Control": _CACHE_CONTROL}
    return Response(body, media_type=JSON, headers={**headers, **tagged})


class TaggedAnswers:
    """The latest answers this gateway sent, by tag, so a plain read of an
    unchanged answer is served again without asking the availability
    service: a tag names the tenant, resource, window and version, so an
    answer found under it is what the service would say (the same exactness
    as a 304). Bounded by the bytes kept; the least recently used go first."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._bytes = 0
        self._answers: OrderedDict[str, bytes] = OrderedDict()

    def get(self, tag: str) -> bytes | None:
        body = self._answers.get(tag)
        if body is not None:
            self._answers.move_to_end(tag)
        return body

    def put(self, tag: str, body: bytes) -> None:
        if len(body) > self._max_bytes or tag in self._answers:
            return
        self._answers[tag] = body
        self._bytes += len(body)
        while self._bytes > self._max_bytes:
            _, dropped = self._answers.popitem(last=False)
            self._bytes -= len(dropped)


@dataclass(frozen=True)
class Recalled:
    """What the gateway knows of an availability answer without asking the
    availability service: the resource's version and the answer's tag (None
    when the ledger is not sure), and whether the caller already has the
    answer (If-None-Match names it) or the gateway kept it."""

    version: Version | None
    tag: str | None
    not_modified: bool = False
    kept: bytes | None = None

    @property
    def answered(self) -> bool:
        return self.not_modified or self.kept is not None

    def response(self, headers: Mapping[str, str]) -> Response:
        """The answer when `answered`: 304, or 200 with the kept answer."""
        assert self.tag is not None
        if self.not_modified:
            return not_modified(self.tag, headers)
        assert self.kept is not None
        return json_answer(self.kept, self.tag, headers)


def recall(
    changes: ChangeLedger,
    answers: TaggedAnswers,
    tenant: str,
    resource_id: str,
    start: datetime,
    end: datetime,
    if_none_match: str | None,
) -> Recalled:
    """A memory lookup, no I/O: what is known of the answer for the window
    [start, end) of the tenant's resource."""
    version = changes.version((tenant, resource_id))
    if version is None:
        return Recalled(None, None)
    tag = availability_tag(version, tenant, resource_id, start, end)
    if matches(if_none_match, tag):
        return Recalled(version, tag, not_modified=True)
    return Recalled(version, tag, kept=answers.get(tag))
