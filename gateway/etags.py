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
from datetime import datetime

from fastapi import Response

from gateway.changes import Version

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


def not_modified(tag: str, sub_response: Response) -> Response:
    """304 with the tag; `sub_response` carries the headers the route's
    dependencies set (the rate limits), which a returned Response must
    carry itself."""
    answer = Response(status_code=304, headers={"ETag": tag, "Cache-Control": _CACHE_CONTROL})
    answer.headers.raw.extend(sub_response.headers.raw)
    return answer


def json_answer(body: bytes, tag: str | None, sub_response: Response) -> Response:
    """200 with `body` (JSON), tagged if there is a tag."""
    answer = Response(body, media_type=JSON)
    if tag is not None:
        answer.headers["ETag"] = tag
        answer.headers["Cache-Control"] = _CACHE_CONTROL
    answer.headers.raw.extend(sub_response.headers.raw)
    return answer


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
