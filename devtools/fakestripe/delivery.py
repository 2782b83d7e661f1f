"""Posting events to the webhook endpoint as Stripe does, and misbehaving on request.

Each delivery is a signed POST; anything but a 2xx (a redirect too), a
connection error or a timeout counts as a failure and is retried with
exponential backoff, a fresh timestamp and signature on every attempt, up to
`RetryPolicy.max_attempts`. Stripe spreads its retries over days; here the
schedule is short and configurable, so tests can watch it.

What a webhook receiver must survive is on offer too: the same event several
times at once (`copies`), a list of events strictly in the order given
(out-of-order arrival), and a delay before sending (late arrival). Every
attempt is recorded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import httpx

from devtools.fakestripe.events import payload
from devtools.fakestripe.objects import JsonObject
from devtools.fakestripe.signing import signature_header

log = logging.getLogger(__name__)

USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"


@dataclass
class WebhookEndpoint:
    """Where events go and how they are signed; changeable while running,
    since a test's receiver often starts after the fake."""

    url: str | None
    secret: str
    # Event types sent ("*": all); the others are only recorded.
    enabled_events: Collection[str]


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 8.0
    # Stripe gives up on a response slower than this and retries.
    timeout_seconds: float = 10.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    def backoff(self, failed_attempt: int) -> float:
        """The wait after attempt `failed_attempt` (1-based) failed: doubling, capped."""
        return float(
            min(self.backoff_seconds * 2 ** (failed_attempt - 1), self.max_backoff_seconds)
        )


@dataclass(frozen=True)
class DeliveryAttempt:
    event_id: str
    event_type: str
    # Which delivery of this event (1, 2...): duplicates each get their own.
    delivery: int
    # Which try of that delivery: 1 is the first, 2 the first retry...
    attempt: int
    url: str
    # The HTTP status, or None when no response came (refused, timed out).
    status: int | None
    error: str | None
    started_at: float
    duration: float

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class WebhookSender:
    def __init__(self, endpoint: WebhookEndpoint, policy: RetryPolicy) -> None:
        self.endpoint = endpoint
        self.policy = policy
        self.attempts: list[DeliveryAttempt] = []
        self._deliveries: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        # trust_env=False: the endpoint is usually local, and a proxy from
        # the environment must not stand between the fake and it.
        self._client = httpx.AsyncClient(
            timeout=self.policy.timeout_seconds, follow_redirects=False, trust_env=False
        )

    async def close(self) -> None:
        tasks, self._tasks = set(self._tasks), set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def forget(self) -> None:
        """Drops the record of past attempts (deliveries in flight go on)."""
        self.attempts.clear()
        self._deliveries.clear()

    def send(self, events: Sequence[JsonObject], *, copies: int = 1, delay: float = 0.0) -> None:
        """Delivers `events` in the background: after `delay` seconds, one
        after another in the order given (each with its retries done before
        the next starts), each as `copies` concurrent deliveries."""
        if copies < 1:
            raise ValueError("copies must be at least 1")
        if delay < 0:
            raise ValueError("delay must not be negative")
        task = asyncio.create_task(self._send(list(events), copies, delay), name="webhook-send")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait_idle(self) -> None:
        """Waits until every delivery scheduled so far (and any scheduled
        meanwhile) has succeeded or run out of attempts; bound it with
        asyncio.timeout (attempts are bounded, but backoff can add up)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def _send(self, events: list[JsonObject], copies: int, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        for event in events:
            await asyncio.gather(*(self._deliver(event) for _ in range(copies)))

    async def _deliver(self, event: JsonObject) -> None:
        event_id = str(event["id"])
        self._deliveries[event_id] += 1
        delivery = self._deliveries[event_id]
        for attempt in range(1, self.policy.max_attempts + 1):
            if await self._attempt(event, delivery, attempt):
                return
            if attempt < self.policy.max_attempts:
                await asyncio.sleep(self.policy.backoff(attempt))
        log.warning("gave up delivering %s after %d attempts", event_id, self.policy.max_attempts)

    async def _attempt(self, event: JsonObject, delivery: int, attempt: int) -> bool:
        url = self.endpoint.url
        if url is None or self._client is None:
            # The endpoint was removed (or the fake stopped) since scheduling.
            return True
        body = payload(event)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            "Accept": "*/*; q=0.5, application/xml",
            "Cache-Control": "no-cache",
            # A new timestamp and signature on every attempt, as Stripe does.
            "Stripe-Signature": signature_header(body, self.endpoint.secret),
        }
        started, clock = time.time(), time.monotonic()
        status: int | None = None
        error: str | None = None
        try:
            response = await self._client.post(url, content=body, headers=headers)
            status = response.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        result = DeliveryAttempt(
            event_id=str(event["id"]),
            event_type=str(event["type"]),
            delivery=delivery,
            attempt=attempt,
            url=url,
            status=status,
            error=error,
            started_at=started,
            duration=time.monotonic() - clock,
        )
        self.attempts.append(result)
        if result.ok:
            # One endpoint: once it has the event, none is pending any more.
            event["pending_webhooks"] = 0
        else:
            log.info(
                "webhook %s (%s) attempt %d failed: %s",
                result.event_id,
                result.event_type,
                attempt,
                status if status is not None else error,
            )
        return result.ok
