"""Helpers for tests of the HTTP gateway: tenants with keys, problems, SSE."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from holdfast.tenancy import SCOPES
from holdfast.tenancy.keys import KeyRepository

PROBLEM_FIELDS = {"type", "title", "status", "detail", "reason", "correlation_id"}
# A resource as a client creates it through the gateway.
RESOURCE = {
    "name": "Kayak",
    "time_zone": "Europe/Lisbon",
    "price": {"currency": "EUR", "amount_minor": 4000},
    "default_capacity": 2,
}


async def key_for(
    keys: KeyRepository,
    tenant: str,
    scopes: tuple[str, ...] = SCOPES,
    *,
    expires_at: datetime | None = None,
    rate_per_second: int | None = None,
) -> dict[str, str]:
    """Headers authenticating as a new key of `tenant` (made if need be)."""
    await keys.create_tenant(tenant, f"tenant {tenant}")
    made = await keys.create_key(
        tenant, scopes, expires_at=expires_at, rate_per_second=rate_per_second
    )
    return {"Authorization": f"Bearer {made.token}"}


def problem_of(response: httpx.Response, status: int, reason: str | None = None) -> dict[str, Any]:
    """The problem document `response` must be (RFC 9457, as the gateway
    answers every error), checked for its shape, status and reason."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/problem+json", response.headers
    body: dict[str, Any] = response.json()
    assert body.keys() >= PROBLEM_FIELDS, body
    assert body["status"] == status, body
    assert all(isinstance(body[name], str) and body[name] for name in PROBLEM_FIELDS - {"status"})
    assert body["correlation_id"] == response.headers["X-Request-Id"], body
    if reason is not None:
        assert body["reason"] == reason, body
    return body


@dataclass(frozen=True)
class Call:
    """One request to make, with a key added when sent."""

    method: str
    path: str
    params: dict[str, str] | None = None
    body: Mapping[str, object] | None = None
    headers: tuple[tuple[str, str], ...] = ()

    async def send(self, api: httpx.AsyncClient, auth: dict[str, str]) -> httpx.Response:
        return await api.request(
            self.method,
            self.path,
            params=self.params,
            json=self.body,
            headers={**auth, **dict(self.headers)},
        )


@dataclass
class Event:
    """One Server-Sent Event as a client sees it."""

    event: str = "message"
    id: str | None = None
    data: str = ""

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class EventStream:
    """Reads an open `text/event-stream` response: events, and the comment
    lines (heartbeats) between them."""

    response: httpx.Response
    comments: list[str] = field(default_factory=list)
    _lines: AsyncIterator[str] | None = None

    async def next_event(self, within: float = 5.0) -> Event:
        """The next event; fails if none comes within `within` seconds."""
        async with asyncio.timeout(within):
            event = await self._read_event()
        assert event is not None
        return event

    async def until(self, comments: int, within: float = 10.0) -> list[Event]:
        """Reads until `comments` more comment lines came; the events read
        meanwhile, in order."""
        events: list[Event] = []
        goal = len(self.comments) + comments
        async with asyncio.timeout(within):
            while len(self.comments) < goal:
                event = await self._read_event(stop_at_comment=True)
                if event is not None:
                    events.append(event)
        return events

    async def until_end(self, within: float = 20.0) -> list[Event]:
        """The events up to the end of the stream, which must come `within`."""
        events: list[Event] = []
        async with asyncio.timeout(within):
            while (event := await self._read_event(end_ok=True)) is not None:
                events.append(event)
        return events

    async def _read_event(
        self, stop_at_comment: bool = False, end_ok: bool = False
    ) -> Event | None:
        """The next event; None at a comment if `stop_at_comment`, and at the
        end of the stream if `end_ok` (which otherwise fails the test)."""
        if self._lines is None:
            self._lines = self.response.aiter_lines()
        current = Event()
        seen_field = False
        async for line in self._lines:
            if line == "":
                if seen_field:
                    return current
                continue
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                if stop_at_comment:
                    return None
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            seen_field = True
            if name == "event":
                current.event = value
            elif name == "id":
                current.id = value
            elif name == "data":
                current.data = f"{current.data}\n{value}" if current.data else value
        if end_ok:
            return None
        raise AssertionError("the event stream ended")


def oversized() -> bytes:
    """A well-formed hold request just over the test gateway's 64 KiB."""
    padding = "x" * (64 * 1024)
    return f'{{"resource_id": "{uuid.uuid4()}", "customer_ref": "{padding}"}}'.encode()
