"""`FakeStripe`: the fake served in-process on a port of its own.

    async with FakeStripe(FakeStripeConfig(webhook_url=url)) as fake:
        client = stripe.StripeClient(fake.api_key, base_addresses={"api": fake.base_url},
                                     http_client=stripe.HTTPXClient())
        session = await client.v1.checkout.sessions.create_async({...})
        event = await fake.pay(session.id)    # checkout.session.completed, sent to url
        await fake.wait_for_deliveries()

What it does and the controls it offers are StripeSimulation's
(devtools.fakestripe.simulation); this adds the serving: a port, and going
down and coming back as an unreachable Stripe does.
"""

from __future__ import annotations

import logging
from types import TracebackType

from devtools.fakestripe.app import build_app
from devtools.fakestripe.config import FakeStripeConfig
from devtools.fakestripe.simulation import StripeSimulation
from holdfast.platform.http_server import HttpHost

log = logging.getLogger(__name__)

# A test's fake Stripe has no long requests to wait for.
_GRACEFUL_STOP_SECONDS = 2.0


class FakeStripe(StripeSimulation):
    def __init__(self, config: FakeStripeConfig | None = None) -> None:
        super().__init__(config)
        self.app = build_app(self)
        self._http = HttpHost(
            self.app, self.config.host, self.config.port, grace_seconds=_GRACEFUL_STOP_SECONDS
        )
        self._bound_port = 0
        self._down = False

    async def start(self) -> str:
        """Starts serving; returns the API base (`http://127.0.0.1:<port>`)."""
        await self.start_working()
        try:
            await self._http.start()
        except BaseException:
            await self.stop_working()
            raise
        self._bound_port = self._http.port
        log.info("fake Stripe listening on %s", self.base_url)
        return self.base_url

    async def stop(self) -> None:
        """Stops serving and drops deliveries still pending."""
        await self._http.stop()
        await self.stop_working()

    async def __aenter__(self) -> FakeStripe:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if not self._bound_port:
            raise RuntimeError("the fake Stripe is not started")
        return self._bound_port

    @property
    def base_url(self) -> str:
        """What to give stripe-python as `base_addresses={"api": ...}`."""
        host = self.config.host
        if host in ("", "0.0.0.0"):  # noqa: S104 - a bind-all host is reached via loopback
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    async def go_down(self) -> None:
        """Stops listening, as when Stripe is unreachable: connections are
        refused, requests in flight get no answer. Objects, events and
        deliveries stay; `come_back()` listens on the same port again."""
        self._down = True
        await self._http.stop()

    async def come_back(self) -> None:
        """Listens again, on the port it had, after `go_down()` (if it went down)."""
        if not self._down:
            return
        self._down = False
        self._http = HttpHost(
            self.app, self.config.host, self._bound_port, grace_seconds=_GRACEFUL_STOP_SECONDS
        )
        await self._http.start()
