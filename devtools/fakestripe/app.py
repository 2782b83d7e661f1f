"""Stripe's API paths over HTTP: authentication, form parameters, idempotency
keys and error responses the way api.stripe.com handles them, so the real
`stripe` client works against the fake with only its API base changed.

Every API request passes through `StripeApi.endpoint`:

1. `Authorization: Bearer <key>` (or HTTP Basic with the key as user name,
   as `curl -u sk_test_...:` sends it) must name a configured key: else 401.
2. The parameters are parsed from the form body (POST) or query (GET).
3. A POST with an `Idempotency-Key` that this API key used before is
   answered from the record: the same status and body again, with
   `Idempotent-Replayed: true`, if the method, path and parameters are the
   same; a 400 `idempotency_error` if not. Otherwise the operation runs and
   its answer is recorded, unless the parameters were refused before it
   began (Stripe saves no result then, so a corrected retry may reuse the key).

The check, the operation and the record run without an await in between (see
account.py), so concurrent requests with one key cannot both execute.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from devtools.fakestripe import param_checks
from devtools.fakestripe.account import RequestContext
from devtools.fakestripe.controls import control_routes
from devtools.fakestripe.errors import StripeError, invalid_param, unrecognized_url
from devtools.fakestripe.expansion import expand
from devtools.fakestripe.forms import FormError, parse_form
from devtools.fakestripe.objects import JsonObject, new_request_id
from devtools.fakestripe.pages import page_routes
from devtools.fakestripe.simulation import StripeSimulation
from devtools.fakestripe.store import IdempotencyRecord, RecordedRequest, StartedRequest

MAX_IDEMPOTENCY_KEY_LENGTH = 255
ALL_METHODS = ["GET", "POST", "DELETE", "PUT", "PATCH"]


@dataclass(frozen=True)
class ApiCall:
    method: str
    path: str
    params: dict[str, Any]
    path_params: dict[str, str]
    ctx: RequestContext


Operation = Callable[[ApiCall], JsonObject]


def build_app(fake: StripeSimulation) -> Starlette:
    api = StripeApi(fake)
    routes: list[BaseRoute] = [
        Route("/v1/checkout/sessions", api.endpoint(api.create_session), methods=["POST"]),
        Route("/v1/checkout/sessions/{id}", api.endpoint(api.retrieve_session), methods=["GET"]),
        Route(
            "/v1/checkout/sessions/{id}/expire",
            api.endpoint(api.expire_session),
            methods=["POST"],
        ),
        Route(
            "/v1/payment_intents/{id}", api.endpoint(api.retrieve_payment_intent), methods=["GET"]
        ),
        Route("/v1/charges/{id}", api.endpoint(api.retrieve_charge), methods=["GET"]),
        Route("/v1/refunds", api.endpoint(api.create_refund), methods=["POST"]),
        Route("/v1/refunds/{id}", api.endpoint(api.retrieve_refund), methods=["GET"]),
        Route("/v1/events/{id}", api.endpoint(api.retrieve_event), methods=["GET"]),
        # Last: any other /v1 path or method is Stripe's "Unrecognized request URL".
        Route("/v1/{rest:path}", api.endpoint(api.unrecognized), methods=ALL_METHODS),
        *page_routes(fake.account),
        Mount("/_fake", routes=control_routes(fake)),
    ]
    return Starlette(routes=routes)


class StripeApi:
    def __init__(self, fake: StripeSimulation) -> None:
        self.fake = fake
        self.store = fake.store
        self.account = fake.account

    def endpoint(self, operation: Operation) -> Callable[[Request], Any]:
        async def handle(request: Request) -> Response:
            return await self._handle(request, operation)

        return handle

    async def _handle(self, request: Request, operation: Operation) -> Response:
        request_id = new_request_id()
        method, path = request.method, request.url.path
        key = request.headers.get("idempotency-key") if method == "POST" else None
        started = StartedRequest(request_id, method, path, key, time.time())
        self.store.in_flight[request_id] = started
        try:
            # Stripe on a slow day: the request is taken up (and answered) late.
            await self.fake.held_up(asyncio.get_running_loop().time())
            return await self._answer(request, operation, request_id, key)
        finally:
            del self.store.in_flight[request_id]

    async def _answer(
        self, request: Request, operation: Operation, request_id: str, key: str | None
    ) -> Response:
        method, path = request.method, request.url.path
        body = await request.body()
        api_key = _api_key(request)
        params: dict[str, Any] = {}
        headers = {"Request-Id": request_id, "Stripe-Version": self._version(request)}
        if key is not None:
            headers["Idempotency-Key"] = key
        replayed = False
        try:
            self._authenticate(api_key)
            assert api_key is not None
            params = _params(method, body, request.url.query)
            record = self._recorded(api_key, key, method, path, params)
            if record is not None:
                replayed = True
                headers.update(
                    {"Idempotent-Replayed": "true", "Original-Request": record.request_id}
                )
                status, content = record.status, record.body
            else:
                ctx = RequestContext(request_id, key, self._base_url(request))
                status, content, replayable = self._run(
                    operation, ApiCall(method, path, params, _path(request), ctx)
                )
                if key is not None and replayable:
                    self.store.idempotency[(api_key, key)] = IdempotencyRecord(
                        method, path, params, status, content, request_id
                    )
        except StripeError as error:
            status, content = error.status, _json(error.body())
            if status == 401:
                headers["WWW-Authenticate"] = 'Basic realm="Stripe"'
        self.store.requests.append(
            RecordedRequest(
                request_id=request_id,
                method=method,
                path=path,
                params=params,
                idempotency_key=key,
                api_key=api_key,
                status=status,
                replayed=replayed,
                at=time.time(),
            )
        )
        return Response(content, status, headers, media_type="application/json")

    def _run(self, operation: Operation, call: ApiCall) -> tuple[int, bytes, bool]:
        try:
            return 200, _json(operation(call)), True
        except StripeError as error:
            return error.status, _json(error.body()), error.replayable

    def _authenticate(self, api_key: str | None) -> None:
        if api_key is None:
            raise StripeError(
                "You did not provide an API key. You need to provide your API key in the"
                " Authorization header, using Bearer auth (e.g. 'Authorization: Bearer"
                " YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details,"
                " or we can help at https://support.stripe.com/.",
                status=401,
            )
        if api_key not in self.fake.config.api_keys:
            raise StripeError(f"Invalid API Key provided: {_redact(api_key)}", status=401)

    def _recorded(
        self, api_key: str, key: str | None, method: str, path: str, params: dict[str, Any]
    ) -> IdempotencyRecord | None:
        if key is None:
            return None
        if len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
            raise invalid_param(
                f"Idempotency-Key must be at most {MAX_IDEMPOTENCY_KEY_LENGTH} characters long.",
                "Idempotency-Key",
            )
        record = self.store.idempotency.get((api_key, key))
        if record is None:
            return None
        if (record.method, record.path) != (method, path):
            raise _idempotency_error(
                "Keys for idempotent requests can only be used for the same endpoint they were"
                f" first used for ('{record.method} {record.path}' vs '{method} {path}'). Try"
                f" using a key other than '{key}' if you meant to execute a different request."
            )
        if record.params != params:
            raise _idempotency_error(
                "Keys for idempotent requests can only be used with the same parameters they"
                f" were first used with. Try using a key other than '{key}' if you meant to"
                " execute a different request."
            )
        return record

    def _base_url(self, request: Request) -> str:
        return (self.fake.config.public_url or str(request.base_url)).rstrip("/")

    def _version(self, request: Request) -> str:
        return request.headers.get("stripe-version") or self.fake.config.api_version

    # --- operations ---------------------------------------------------------

    def create_session(self, call: ApiCall) -> JsonObject:
        session = self.account.create_session(call.params, call.ctx)
        return expand(session, param_checks.expand(call.params), self.store)

    def retrieve_session(self, call: ApiCall) -> JsonObject:
        paths = param_checks.expand_only(call.params)
        return expand(self.account.session(call.path_params["id"]), paths, self.store)

    def expire_session(self, call: ApiCall) -> JsonObject:
        paths = param_checks.expand_only(call.params)
        session, _ = self.account.expire_session(call.path_params["id"], call.ctx)
        return expand(session, paths, self.store)

    def retrieve_payment_intent(self, call: ApiCall) -> JsonObject:
        paths = param_checks.expand_only(call.params)
        return expand(self.store.payment_intent(call.path_params["id"]), paths, self.store)

    def retrieve_charge(self, call: ApiCall) -> JsonObject:
        paths = param_checks.expand_only(call.params)
        return expand(self.store.charge(call.path_params["id"]), paths, self.store)

    def create_refund(self, call: ApiCall) -> JsonObject:
        refund = self.account.create_refund(call.params, call.ctx)
        return expand(refund, param_checks.expand(call.params), self.store)

    def retrieve_refund(self, call: ApiCall) -> JsonObject:
        paths = param_checks.expand_only(call.params)
        return expand(self.store.refund(call.path_params["id"]), paths, self.store)

    def retrieve_event(self, call: ApiCall) -> JsonObject:
        param_checks.check_known(call.params, ())
        return self.store.event(call.path_params["id"])

    def unrecognized(self, call: ApiCall) -> JsonObject:
        raise unrecognized_url(call.method, call.path)


def _api_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer" and credentials:
        return credentials
    if scheme.lower() == "basic" and credentials:
        try:
            user = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return user.partition(":")[0] or None
    return None


def _params(method: str, body: bytes, query: str) -> dict[str, Any]:
    try:
        return parse_form(body if method == "POST" else query)
    except FormError as error:
        raise invalid_param(error.message, error.param) from None
    except UnicodeDecodeError:
        raise invalid_param("The request body is not valid UTF-8.", "body") from None


def _path(request: Request) -> dict[str, str]:
    return {name: str(value) for name, value in request.path_params.items()}


def _idempotency_error(message: str) -> StripeError:
    return StripeError(message, error_type="idempotency_error", replayable=False)


def _redact(api_key: str) -> str:
    if len(api_key) <= 12:
        return "*" * len(api_key)
    return api_key[:8] + "*" * (len(api_key) - 12) + api_key[-4:]


def _json(obj: JsonObject) -> bytes:
    # Stripe answers with pretty-printed JSON.
    return json.dumps(obj, indent=2).encode("utf-8")
