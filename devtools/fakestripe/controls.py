"""Test controls over HTTP under `/_fake/` (not Stripe's API): the FakeStripe
methods of the same names, for tests that run the fake as a separate process.

Bodies are JSON and optional; answers are JSON; a refused control answers in
Stripe's error format. No API key is asked for: the fake serves local test
traffic only (and binds to 127.0.0.1 unless told otherwise).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from devtools.fakestripe.errors import StripeError
from devtools.fakestripe.simulation import StripeSimulation

Control = Callable[[Request, dict[str, Any]], Awaitable[Any]]


def control_routes(fake: StripeSimulation) -> list[BaseRoute]:
    return _Controls(fake).routes()


class _Controls:
    """One method per control, each answering a request's JSON body."""

    def __init__(self, fake: StripeSimulation) -> None:
        self._fake = fake

    def routes(self) -> list[BaseRoute]:
        return [
            _route("/checkout/sessions/{id}/pay", self.pay),
            _route("/checkout/sessions/{id}/async_payment", self.async_payment),
            _route("/checkout/sessions/{id}/expire", self.expire),
            _route("/events", self.events, "GET"),
            _route("/events/deliver", self.deliver),
            _route("/deliveries", self.deliveries, "GET"),
            _route("/deliveries/wait", self.wait),
            _route("/requests", self.requests, "GET"),
            _route("/webhook_endpoint", self.webhook),
            _route("/clock/advance", self.advance),
            _route("/sign", self.sign),
            _route("/latency", self.latency),
            _route("/reset", self.reset),
        ]

    async def pay(self, request: Request, body: dict[str, Any]) -> Any:
        return await self._fake.pay(
            request.path_params["id"],
            async_payment=_flag(body, "async_payment", default=False),
            deliver=_flag(body, "deliver", default=True),
        )

    async def async_payment(self, request: Request, body: dict[str, Any]) -> Any:
        return await self._fake.finish_async_payment(
            request.path_params["id"],
            succeeded=_flag(body, "succeeded", default=True),
            deliver=_flag(body, "deliver", default=True),
        )

    async def expire(self, request: Request, body: dict[str, Any]) -> Any:
        return await self._fake.expire_session(
            request.path_params["id"], deliver=_flag(body, "deliver", default=True)
        )

    async def events(self, request: Request, body: dict[str, Any]) -> Any:
        return _list(self._fake.events(request.query_params.get("type")))

    async def deliver(self, request: Request, body: dict[str, Any]) -> Any:
        event_ids = body.get("events")
        if not isinstance(event_ids, list) or not all(isinstance(e, str) for e in event_ids):
            raise StripeError("events must be a list of event ids", param="events")
        await self._fake.deliver(
            *event_ids,
            copies=int(_number(body, "copies", 1)),
            delay=_number(body, "delay", 0.0),
        )
        return {"scheduled": event_ids}

    async def deliveries(self, request: Request, body: dict[str, Any]) -> Any:
        attempts = self._fake.deliveries(request.query_params.get("event_id"))
        return _list([{**asdict(a), "ok": a.ok} for a in attempts])

    async def wait(self, request: Request, body: dict[str, Any]) -> Any:
        try:
            async with asyncio.timeout(_number(body, "timeout", 10.0)):
                await self._fake.wait_for_deliveries()
        except TimeoutError:
            raise StripeError(
                "deliveries still pending", status=504, error_type="api_error"
            ) from None
        return {"idle": True}

    async def requests(self, request: Request, body: dict[str, Any]) -> Any:
        q = request.query_params
        seen = self._fake.requests(
            method=q.get("method"), path=q.get("path"), idempotency_key=q.get("idempotency_key")
        )
        return _list([asdict(r) for r in seen])

    async def webhook(self, request: Request, body: dict[str, Any]) -> Any:
        enabled = body.get("enabled_events")
        self._fake.configure_webhook(
            body.get("url"),
            secret=body.get("secret"),
            enabled_events=enabled if isinstance(enabled, list) else None,
        )
        endpoint = self._fake.endpoint
        return {"url": endpoint.url, "enabled_events": sorted(endpoint.enabled_events)}

    async def advance(self, request: Request, body: dict[str, Any]) -> Any:
        expired = await self._fake.advance_clock(_number(body, "seconds", 0.0))
        return {"now": self._fake.clock.now(), "expired": [event["id"] for event in expired]}

    async def sign(self, request: Request, body: dict[str, Any]) -> Any:
        payload = body.get("payload")
        if not isinstance(payload, str):
            raise StripeError("payload must be a string", param="payload")
        timestamp = body.get("timestamp")
        return {
            "header": self._fake.sign(
                payload,
                timestamp=int(timestamp) if timestamp is not None else None,
                secret=body.get("secret"),
            )
        }

    async def latency(self, request: Request, body: dict[str, Any]) -> Any:
        self._fake.slow_down(_number(body, "seconds", 0.0))
        return {
            "seconds": self._fake.api_latency,
            "in_flight": [asdict(r) for r in self._fake.in_flight()],
        }

    async def reset(self, request: Request, body: dict[str, Any]) -> Any:
        self._fake.reset()
        return {"reset": True}


def _route(path: str, control: Control, method: str = "POST") -> Route:
    return Route(path, _endpoint(control), methods=[method])


def _endpoint(control: Control) -> Callable[[Request], Awaitable[Response]]:
    async def handle(request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw.strip() else {}
            if not isinstance(body, dict):
                raise StripeError("the body must be a JSON object")
            return JSONResponse(await control(request, body))
        except json.JSONDecodeError as error:
            return JSONResponse(StripeError(f"invalid JSON: {error}").body(), 400)
        except StripeError as error:
            return JSONResponse(error.body(), error.status)
        except ValueError as error:
            return JSONResponse(StripeError(str(error)).body(), 400)

    return handle


def _flag(body: dict[str, Any], name: str, *, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise StripeError(f"{name} must be true or false", param=name)
    return value


def _number(body: dict[str, Any], name: str, default: float) -> float:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise StripeError(f"{name} must be a number", param=name)
    return float(value)


def _list(items: list[Any]) -> dict[str, Any]:
    return {"object": "list", "data": items}
