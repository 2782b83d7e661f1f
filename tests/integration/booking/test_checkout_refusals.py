"""Checkout refuses before calling (the fake) Stripe what Stripe would refuse
(URLs, totals), takes what it takes, and starts a new attempt after a refused
or declined one; the gateway answers 422 naming what is refused.

The module runs its own stack on a database of its own, as
tests/integration/booking/test_payments.py does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest

from holdfast.contracts.booking.v1 import booking_pb2
from holdfast.tenancy.keys import KeyRepository
from tests.support.availability import eventually
from tests.support.booking import BookingClient, error_of
from tests.support.gateway import key_for, problem_of
from tests.support.payments import (
    PaymentStack,
    checkout,
    held_checkout,
    payment_stack,
    until_status,
)


@pytest.fixture(scope="module")
async def stack(database_url: str, redis: object) -> AsyncIterator[PaymentStack]:
    async with payment_stack(database_url, with_gateway=True) as running:
        yield running


@pytest.fixture
def shop(stack: PaymentStack, tenant: str) -> BookingClient:
    return BookingClient.on(stack.channel, tenant)


async def checkout_rows(stack: PaymentStack, hold_id: str) -> list[Any]:
    rows: list[Any] = await stack.db.fetch(
        "SELECT attempt, status, failure_reason FROM checkouts WHERE hold_id = $1::uuid"
        " ORDER BY attempt",
        hold_id,
    )
    return rows


def session_creates(stack: PaymentStack, hold_id: str) -> list[Any]:
    return [
        r
        for r in stack.fake.requests(method="POST", path="/v1/checkout/sessions")
        if (r.idempotency_key or "").startswith(f"checkout:{hold_id}:")
    ]


@pytest.mark.parametrize(
    "url",
    [
        "http://",
        "https:///checkout/done",
        "http://:8080/done",
        "shop.example/done",
        "ftp://shop.example/done",
        "https://shop example/done",
    ],
)
@pytest.mark.parametrize("field", ["success_url", "cancel_url"])
async def test_checkout_refuses_urls_stripe_would_refuse_before_calling_it(
    stack: PaymentStack, shop: BookingClient, url: str, field: str
) -> None:
    resource, [slot] = await shop.resource_with_slots(capacity=2)
    hold = await shop.hold(resource.resource_id, [slot.slot_id])

    refused = await error_of(checkout(shop, hold.hold_id, **{field: url}))

    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in refused.field_violations] == [field]
    assert await checkout_rows(stack, hold.hold_id) == []
    assert session_creates(stack, hold.hold_id) == []


@pytest.mark.parametrize(
    ("currency", "price_minor", "quantity", "problem"),
    [
        ("EUR", 0, 1, "nothing to pay"),
        ("EUR", 49, 1, "below Stripe's minimum charge for EUR"),
        ("GBP", 29, 1, "below Stripe's minimum charge for GBP"),
        ("JPY", 49, 1, "below Stripe's minimum charge for JPY"),
        ("USD", 50_000_000, 2, "above Stripe's maximum"),
    ],
)
async def test_checkout_refuses_totals_stripe_would_refuse_before_calling_it(
    stack: PaymentStack,
    shop: BookingClient,
    currency: str,
    price_minor: int,
    quantity: int,
    problem: str,
) -> None:
    resource = await shop.resource(capacity=4, price_minor=price_minor, currency=currency)
    [slot] = await shop.slots(resource.resource_id)
    hold = await shop.hold(resource.resource_id, [slot.slot_id], quantity=quantity)

    refused = await error_of(checkout(shop, hold.hold_id))

    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
    [(field, description)] = refused.field_violations
    assert field == "hold_id"
    assert problem in description
    assert await checkout_rows(stack, hold.hold_id) == []
    assert session_creates(stack, hold.hold_id) == []


@pytest.mark.parametrize(
    ("currency", "price_minor", "quantity"),
    [("EUR", 50, 1), ("GBP", 30, 1), ("JPY", 50, 1), ("USD", 99_999_999, 1)],
)
async def test_checkout_takes_the_smallest_and_largest_totals_stripe_takes(
    shop: BookingClient, currency: str, price_minor: int, quantity: int
) -> None:
    resource = await shop.resource(capacity=4, price_minor=price_minor, currency=currency)
    [slot] = await shop.slots(resource.resource_id)
    hold = await shop.hold(resource.resource_id, [slot.slot_id], quantity=quantity)

    started = await checkout(shop, hold.hold_id)

    assert started.status == booking_pb2.CHECKOUT_STATUS_OPEN
    assert started.amount.amount_minor == price_minor * quantity


async def test_after_a_refused_attempt_a_corrected_checkout_starts_a_new_one(
    stack: PaymentStack, shop: BookingClient, tenant: str
) -> None:
    resource, [slot] = await shop.resource_with_slots(capacity=2)
    hold = await shop.hold(resource.resource_id, [slot.slot_id], ttl_seconds=600)
    # An attempt an earlier version started with a URL Stripe refuses, and
    # left CREATING when Stripe refused it.
    await stack.db.execute(
        """
        INSERT INTO checkouts (hold_id, attempt, tenant_id, status, amount_minor, currency,
                               expires_at, success_url, cancel_url)
        VALUES ($1::uuid, 1, $2, 'CREATING', $3, 'EUR', now() + interval '31 minutes',
                'http://', 'https://shop.example/cancelled')
        """,
        hold.hold_id,
        tenant,
        hold.total.amount_minor,
    )

    started = await checkout(shop, hold.hold_id, success_url="https://shop.example/done")

    assert (started.attempt, started.status) == (2, booking_pb2.CHECKOUT_STATUS_OPEN)
    first, second = await checkout_rows(stack, hold.hold_id)
    assert first["status"] == "FAILED"
    assert "Not a valid URL" in first["failure_reason"]
    assert second["status"] == "OPEN"
    creates = session_creates(stack, hold.hold_id)
    assert [r.params["success_url"] for r in creates] == ["http://", "https://shop.example/done"]


async def test_a_declined_async_payment_closes_its_checkout(
    stack: PaymentStack, shop: BookingClient
) -> None:
    held = await held_checkout(shop, capacity=2)
    await stack.fake.pay(held.session.session_id, async_payment=True)

    await stack.fake.finish_async_payment(held.session.session_id, succeeded=False)

    await until_status(shop, held.hold.hold_id, booking_pb2.HOLD_STATUS_RELEASED)
    closed = await eventually(
        lambda: checkout_rows(stack, held.hold.hold_id), lambda rows: rows[0]["status"] != "OPEN"
    )
    assert closed[0]["status"] == "FAILED"
    assert "declined" in closed[0]["failure_reason"]
    again = await stack.reconcile()
    assert again >= 0
    assert (await checkout_rows(stack, held.hold.hold_id))[0]["status"] == "FAILED"


async def test_the_gateway_answers_422_naming_what_stripe_would_refuse(
    stack: PaymentStack, shop: BookingClient, tenant: str
) -> None:
    assert stack.gateway is not None
    auth = await key_for(KeyRepository(stack.db), tenant)
    resource, [slot] = await shop.resource_with_slots(capacity=2)
    hold = await shop.hold(resource.resource_id, [slot.slot_id])
    cheap = await shop.resource(capacity=2, price_minor=20, currency="GBP")
    [cheap_slot] = await shop.slots(cheap.resource_id)
    too_little = await shop.hold(cheap.resource_id, [cheap_slot.slot_id])
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{stack.gateway.port}", headers=auth, timeout=10
    ) as api:
        hostless = await api.post(
            f"/v1/holds/{hold.hold_id}/checkout", json={"success_url": "http://"}
        )
        small = await api.post(f"/v1/holds/{too_little.hold_id}/checkout")

    [url_error] = problem_of(hostless, 422, "INVALID_ARGUMENT")["errors"]
    assert url_error["field"] == "success_url"
    assert url_error["detail"].startswith("must be an absolute http:// or https:// URL with a host")
    [error] = problem_of(small, 422, "INVALID_ARGUMENT")["errors"]
    assert error["field"] == "hold_id"
    assert "minimum charge for GBP" in error["detail"]
    assert await checkout_rows(stack, hold.hold_id) == []
