"""What the fake Stripe does, apart from serving it over HTTP: its account
(objects, idempotency), clock, webhook deliveries, and the controls a test
drives it with ("the customer paid", "send that event again, three times at
once", "be slow"). `FakeStripe` (devtools.fakestripe.server) serves it; the
HTTP app (app.py, controls.py, pages.py) is written against this.

Control methods that may send events are coroutines: deliveries run as tasks
on the caller's event loop. They raise StripeError when Stripe itself would
refuse (paying an expired session).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from devtools.fakestripe.account import Account, RequestContext
from devtools.fakestripe.clock import Clock
from devtools.fakestripe.config import FakeStripeConfig
from devtools.fakestripe.delivery import DeliveryAttempt, WebhookEndpoint, WebhookSender
from devtools.fakestripe.objects import JsonObject
from devtools.fakestripe.signing import signature_header
from devtools.fakestripe.store import RecordedRequest, StartedRequest, Store, snapshot
from holdfast.platform.background import BackgroundTask

log = logging.getLogger(__name__)


class StripeSimulation:
    def __init__(self, config: FakeStripeConfig | None = None) -> None:
        self.config = config or FakeStripeConfig()
        self.store = Store()
        self.clock = Clock()
        self.endpoint = WebhookEndpoint(
            url=self.config.webhook_url,
            secret=self.config.webhook_secret,
            enabled_events=frozenset(self.config.enabled_events),
        )
        self.sender = WebhookSender(self.endpoint, self.config.retry)
        self.account = Account(
            self.store,
            self.clock,
            self.endpoint,
            deliver=lambda event: self.sender.send([event]),
            api_version=self.config.api_version,
        )
        # Seconds every API request waits before it is taken up (slow_down).
        self.api_latency = 0.0
        self._latency_changed = asyncio.Event()
        self._sweeper = BackgroundTask("fake-stripe-expiry", self._expire_lapsed_sessions)

    async def start_working(self) -> None:
        """Webhook deliveries and the expiry of lapsed sessions start."""
        await self.sender.start()
        self._sweeper.start()

    async def stop_working(self) -> None:
        """They stop; deliveries still pending are dropped."""
        await self._sweeper.stop()
        await self.sender.close()

    @property
    def api_key(self) -> str:
        """The (first) API key the fake accepts."""
        return self.config.api_keys[0]

    @property
    def webhook_secret(self) -> str:
        return self.endpoint.secret

    def configure_webhook(
        self,
        url: str | None,
        *,
        secret: str | None = None,
        enabled_events: Iterable[str] | None = None,
    ) -> None:
        """Where later events go (None: nowhere), signed with `secret`, and
        which types ("*": all). Unchanged when not given: secret, types."""
        self.endpoint.url = url
        if secret is not None:
            self.endpoint.secret = secret
        if enabled_events is not None:
            self.endpoint.enabled_events = frozenset(enabled_events)

    # --- what customers, banks and time do ----------------------------------

    async def pay(
        self, session_id: str, *, async_payment: bool = False, deliver: bool = True
    ) -> JsonObject:
        """The customer pays the open session `session_id`.

        By card: the session is complete and paid, its payment intent and
        charge succeeded. With `async_payment` (SEPA Direct Debit): complete
        but unpaid, the payment processing until `finish_async_payment`.
        Returns the checkout.session.completed event, which is sent at once
        unless `deliver` is False (send it later with `deliver()`)."""
        return snapshot(self.account.pay(session_id, async_payment=async_payment, deliver=deliver))

    async def finish_async_payment(
        self, session_id: str, *, succeeded: bool = True, deliver: bool = True
    ) -> JsonObject:
        """The bank settles the payment `pay(async_payment=True)` started.
        Returns checkout.session.async_payment_succeeded (or _failed)."""
        event = self.account.finish_async_payment(session_id, succeeded=succeeded, deliver=deliver)
        return snapshot(event)

    async def expire_session(self, session_id: str, *, deliver: bool = True) -> JsonObject:
        """The session lapses (as at its expires_at). Returns checkout.session.expired."""
        _, event = self.account.expire_session(session_id, RequestContext(), deliver=deliver)
        return snapshot(event)

    async def advance_clock(self, seconds: float) -> list[JsonObject]:
        """Moves the fake's clock on; sessions it carries past their
        expires_at expire at once. Returns their checkout.session.expired events."""
        self.clock.advance(seconds)
        return [snapshot(event) for event in self.account.expire_lapsed()]

    # --- Stripe having a bad day ---------------------------------------------

    def slow_down(self, seconds: float) -> None:
        """From now on every API request is taken up and answered `seconds`
        late (0: at once again), as when Stripe is slow; the `/_fake/`
        controls stay quick. `in_flight()` lists the requests held up.

        Requests held up already go by the new latency too: `seconds` after
        they came, at once if that has passed. A test can so keep Stripe
        silent for longer than it runs, and let it answer when it is done."""
        if seconds < 0:
            raise ValueError("seconds must not be negative")
        self.api_latency = seconds
        self._latency_changed.set()
        self._latency_changed = asyncio.Event()

    async def held_up(self, since: float) -> None:
        """Returns when a request that came at `since` (the event loop's
        time) is due by the latency as it is, or as it is set meanwhile."""
        loop = asyncio.get_running_loop()
        while (left := since + self.api_latency - loop.time()) > 0:
            changed = self._latency_changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), left)

    def in_flight(
        self, *, method: str | None = None, path: str | None = None
    ) -> list[StartedRequest]:
        """API requests received and not answered yet, oldest first."""
        return sorted(
            (
                r
                for r in self.store.in_flight.values()
                if (method is None or r.method == method.upper())
                and (path is None or r.path == path)
            ),
            key=lambda r: r.at,
        )

    # --- deliveries ---------------------------------------------------------

    async def deliver(self, *event_ids: str, copies: int = 1, delay: float = 0.0) -> None:
        """Sends events (again) to the webhook endpoint, in the background:
        after `delay` seconds, in the order given (each one's retries finish
        before the next starts), each as `copies` concurrent deliveries.
        Ignores enabled_events: asking for an event is enabling it."""
        if self.endpoint.url is None:
            raise ValueError("no webhook endpoint: configure_webhook(url) first")
        events = [self.store.event(event_id) for event_id in event_ids]
        self.sender.send(events, copies=copies, delay=delay)

    async def wait_for_deliveries(self) -> None:
        """Returns once every delivery so far has succeeded or used up its
        attempts. Bound it: `async with asyncio.timeout(10): ...`."""
        await self.sender.wait_idle()

    def deliveries(self, event_id: str | None = None) -> list[DeliveryAttempt]:
        """Every delivery attempt (of `event_id`), oldest first."""
        return [a for a in self.sender.attempts if event_id is None or a.event_id == event_id]

    # --- what happened ------------------------------------------------------

    def events(self, event_type: str | None = None) -> list[JsonObject]:
        """Every event created (of `event_type`), oldest first."""
        return [
            snapshot(event)
            for event in self.store.events.values()
            if event_type is None or event["type"] == event_type
        ]

    def event(self, event_id: str) -> JsonObject:
        return snapshot(self.store.event(event_id))

    def requests(
        self,
        *,
        method: str | None = None,
        path: str | None = None,
        idempotency_key: str | None = None,
    ) -> list[RecordedRequest]:
        """API requests seen (matching all the filters given), oldest first."""
        return [
            r
            for r in self.store.requests
            if (method is None or r.method == method.upper())
            and (path is None or r.path == path)
            and (idempotency_key is None or r.idempotency_key == idempotency_key)
        ]

    def sign(
        self, payload: bytes | str, *, timestamp: int | None = None, secret: str | None = None
    ) -> str:
        """A `Stripe-Signature` header for any payload: the endpoint's secret
        and now, unless told otherwise (stale or future times, wrong secrets)."""
        return signature_header(payload, secret or self.endpoint.secret, timestamp)

    def reset(self) -> None:
        """Forgets every object, event, idempotency key, request and attempt;
        the clock goes back to real time and answers come at once again.
        Configuration stays."""
        self.store.clear()
        self.sender.forget()
        self.clock.reset()
        self.slow_down(0.0)

    async def _expire_lapsed_sessions(self) -> None:
        while True:
            try:
                self.account.expire_lapsed()
            except Exception:
                log.exception("expiring lapsed checkout sessions failed")
            await asyncio.sleep(self.config.expiry_sweep_seconds)
