"""Stripe's side of `bench.webhooks`: signed checkout.session.completed
events for holds made for them, and their delivery (and redelivery, as
Stripe would) to the webhook service."""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import httpx

from bench.grpc_load import (
    CALL_TIMEOUT_SECONDS,
    OK,
    HoldCall,
    Phase,
    ServiceClient,
    keep_busy,
    outcome_of_status,
)
from bench.webhooks_options import Options
from devtools.fakestripe.account import CUSTOMER_NAME, DEFAULT_CUSTOMER_EMAIL
from devtools.fakestripe.config import API_VERSION
from devtools.fakestripe.delivery import USER_AGENT
from devtools.fakestripe.events import build_event, payload
from devtools.fakestripe.objects import build, new_id, new_session_id
from devtools.fakestripe.signing import signature_header
from holdfast.contracts.booking.v1 import booking_pb2
from holdfast.platform.grpc_errors import details_of

EVENT_TYPE = "checkout.session.completed"
# The price bench.holds.ServiceClient.resource gives every slot.
PRICE_MINOR = 1000
CURRENCY = "eur"
# A copy of a stored event answered 200 but not as a duplicate.
STORED_AGAIN = "STORED_AGAIN"
# Failed deliveries are sent again after the phase, as Stripe would.
REDELIVERY_ATTEMPTS = 3
REDELIVERY_BACKOFF_SECONDS = 0.5
HTTP_TIMEOUT_SECONDS = 10.0  # Stripe's own: a slower answer is a failed delivery


def completed_event(hold_id: str, tenant: str, created: int) -> tuple[dict[str, Any], str]:
    """A `checkout.session.completed` event for a card payment of `hold_id`,
    shaped like the fake Stripe's (hence Stripe's), with the metadata the
    booking service puts on its sessions; and its payment intent id."""
    intent = new_id("pi")
    # As the fake Stripe's `pay` fills it in.
    customer = {
        "address": build("charge")["billing_details"]["address"],
        "business_name": None,
        "email": DEFAULT_CUSTOMER_EMAIL,
        "individual_name": None,
        "name": CUSTOMER_NAME,
        "phone": None,
        "tax_exempt": "none",
        "tax_ids": [],
    }
    session = build(
        "checkout.session",
        id=new_session_id(),
        amount_subtotal=PRICE_MINOR,
        amount_total=PRICE_MINOR,
        cancel_url=f"https://bench.invalid/cancelled/{hold_id}",
        client_reference_id=hold_id,
        created=created - 90,
        currency=CURRENCY,
        customer_details=customer,
        expires_at=created + 1710,
        metadata={"hold_id": hold_id, "tenant_id": tenant, "attempt": "1", "traceparent": ""},
        mode="payment",
        payment_intent=intent,
        payment_method_types=["card"],
        payment_status="paid",
        status="complete",
        success_url=f"https://bench.invalid/paid/{hold_id}",
        url=None,
    )
    event = build_event(
        EVENT_TYPE, session, created=created, api_version=API_VERSION, pending_webhooks=1
    )
    return event, intent


@dataclass(frozen=True)
class Answer:
    """How one delivery went: OK, HTTP <code> or the client's error; when it was
    sent (client wall clock), how long the answer took, and for a 200 whether
    the receiver called it a duplicate."""

    outcome: str
    sent_at: float
    seconds: float
    duplicate: bool | None = None
    detail: str = ""


@dataclass
class Delivery:
    hold_id: str
    event_id: str
    payment_ref: str
    body: bytes
    answers: list[Answer] = field(default_factory=list)

    @property
    def delivered(self) -> bool:
        return bool(self.answers) and self.answers[-1].outcome == OK


class Receiver:
    """POSTs signed bodies to the webhook endpoint as Stripe does: Stripe's
    headers, a fresh timestamp and signature on every attempt, over
    keep-alive HTTP/1.1 connections.

    One httpx client per connection, each taken by one delivery at a time:
    one client's pool shared by 32 requests in flight cost ~2.5 ms of CPU per
    request (its bookkeeping grows with the requests waiting on it) against
    ~0.8 ms with a client each, and the bench, not the receiver, set the pace.
    """

    def __init__(self, url: str, secret: str, connections: int) -> None:
        self.url = url
        self.secret = secret
        self._idle = [self._client() for _ in range(connections)]
        self._all = list(self._idle)

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=HTTP_TIMEOUT_SECONDS,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": USER_AGENT,
                "Accept": "*/*; q=0.5, application/xml",
                "Cache-Control": "no-cache",
            },
        )

    async def post(self, body: bytes) -> Answer:
        if not self._idle:  # more deliveries at once than connections: one more
            self._all.append(self._client())
            self._idle.append(self._all[-1])
        client = self._idle.pop()
        try:
            return await self._post(client, body)
        finally:
            self._idle.append(client)

    async def _post(self, client: httpx.AsyncClient, body: bytes) -> Answer:
        headers = {"Stripe-Signature": signature_header(body, self.secret)}
        sent_at, started = time.time(), time.perf_counter()
        try:
            response = await client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as error:
            seconds = time.perf_counter() - started
            return Answer(type(error).__name__, sent_at, seconds, detail=str(error)[:200])
        seconds = time.perf_counter() - started
        if response.status_code != 200:
            return Answer(
                f"HTTP {response.status_code}", sent_at, seconds, detail=response.text[:200]
            )
        try:
            duplicate = bool(response.json()["duplicate"])
        except (ValueError, KeyError, TypeError):
            return Answer("BAD_ANSWER", sent_at, seconds, detail=response.text[:200])
        return Answer(OK, sent_at, seconds, duplicate)

    async def close(self) -> None:
        await asyncio.gather(*(client.aclose() for client in self._all))


def examples(answers: Sequence[Answer]) -> dict[str, str]:
    """One detail per kind of failed answer, for the report."""
    found: dict[str, str] = {}
    for answer in answers:
        if answer.outcome != OK:
            found.setdefault(answer.outcome, answer.detail)
    return found


async def deliver(
    label: str, receiver: Receiver, deliveries: Sequence[Delivery], concurrency: int
) -> Phase:
    """Every delivery once, `concurrency` at a time; answers kept on each."""

    async def call(i: int) -> str:
        answer = await receiver.post(deliveries[i].body)
        deliveries[i].answers.append(answer)
        return answer.outcome

    return await keep_busy(label, call, concurrency, len(deliveries), None)


async def redeliver(receiver: Receiver, deliveries: Sequence[Delivery], concurrency: int) -> int:
    """Sends failed deliveries again with backoff, like Stripe; how many needed it."""
    failed = [d for d in deliveries if not d.delivered]
    for attempt in range(REDELIVERY_ATTEMPTS):
        pending = [d for d in failed if not d.delivered]
        if not pending:
            break
        await asyncio.sleep(REDELIVERY_BACKOFF_SECONDS * 2**attempt)
        await deliver("redelivery", receiver, pending, concurrency)
    return len(failed)


class BookingClient(ServiceClient):
    def hold_maker(self, resource_id: str, slot_ids: Sequence[str], made: list[str]) -> HoldCall:
        """A call that holds one unit of slot `i mod len(slot_ids)` and puts the
        hold's id at `made[i]`."""
        stubs = self._booking

        async def hold(i: int) -> str:
            try:
                response = await stubs[i % len(stubs)].CreateHold(
                    booking_pb2.CreateHoldRequest(
                        resource_id=resource_id,
                        slot_ids=[slot_ids[i % len(slot_ids)]],
                        quantity=1,
                        customer_ref="bench-webhooks",
                    ),
                    metadata=self.metadata,
                    timeout=CALL_TIMEOUT_SECONDS,
                )
            except grpc.aio.AioRpcError as error:
                details = details_of(error)
                return outcome_of_status(details.code, details.reason)
            made[i] = response.hold.hold_id
            return OK

        return hold


async def make_holds(client: BookingClient, options: Options) -> list[str] | None:
    """One hold per event (warm-up included), spread over --slots slots."""
    count = options.events + options.warmup
    slots = min(options.slots, count)
    capacity = math.ceil(count / slots)
    resource_id = await client.resource(capacity)
    slot_ids = await client.slots(resource_id, slots, capacity)
    made = [""] * count
    phase = await keep_busy(
        "setup", client.hold_maker(resource_id, slot_ids, made), options.concurrency, count, None
    )
    if phase.ok != count:
        others = ", ".join(f"{k} {v}" for k, v in phase.outcomes.items() if k != OK)
        print(f"setup: only {phase.ok} of {count} holds were made ({others})", file=sys.stderr)
        return None
    return made


def prepare_deliveries(hold_ids: Sequence[str], tenant: str) -> list[Delivery]:
    """The events' bodies, built (and their JSON written) before anything is timed."""
    created = int(time.time())
    deliveries = []
    for hold_id in hold_ids:
        event, intent = completed_event(hold_id, tenant, created)
        deliveries.append(Delivery(hold_id, event["id"], intent, payload(event)))
    return deliveries
