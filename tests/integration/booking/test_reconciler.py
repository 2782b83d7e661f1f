"""The payment reconciler when many checkouts can never settle: attempts
Stripe refused, payments declined or still pending. None of them may keep a
paid checkout whose webhook was lost from being confirmed.

Each test has a database of its own and a booking service whose reconciler
only runs when the test calls a pass (`run_once`), a batch of
`BATCH` at a time; no webhook endpoint is configured at the fake Stripe, so
every webhook is lost and only the reconciler learns what happened.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import grpc
import pytest

from devtools.fakestripe import FakeStripe
from holdfast.contracts.booking.v1 import booking_pb2
from services.booking.server import BookingApp
from tests.support.booking import BookingClient
from tests.support.payments import checkout, hold_status
from tests.support.services import running_booking

BATCH = 10
# Every checkout is due at once: the reconciler looks at checkouts this
# close to lapsing, and these all lapse within a day.
LEAD_SECONDS = 24 * 3600


@pytest.fixture(scope="module")
async def fake() -> AsyncIterator[FakeStripe]:
    async with FakeStripe() as running:  # no webhook endpoint: every webhook is lost
        yield running


@dataclass
class Reconciling:
    app: BookingApp
    channel: grpc.aio.Channel
    db: asyncpg.Pool

    def client(self, tenant: str) -> BookingClient:
        return BookingClient.on(self.channel, tenant)

    async def reconcile(self) -> int:
        assert self.app.reconciler is not None
        return await self.app.reconciler.run_once()


@pytest.fixture
async def service(own_database: str, fake: FakeStripe) -> AsyncIterator[Reconciling]:
    async with (
        running_booking(
            own_database,
            stripe_api_key=fake.api_key,
            stripe_api_base=fake.base_url,
            reconciler_interval_seconds=3600,
            reconciler_batch_size=BATCH,
            reconciler_lead_seconds=LEAD_SECONDS,
        ) as app,
        grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel,
        asyncpg.create_pool(own_database, min_size=1, max_size=2) as db,
    ):
        yield Reconciling(app, channel, db)


async def a_hold(client: BookingClient, ttl_seconds: float) -> booking_pb2.Hold:
    resource, [slot] = await client.resource_with_slots(capacity=1)
    return await client.hold(resource.resource_id, [slot.slot_id], ttl_seconds=ttl_seconds)


async def refused_attempts(service: Reconciling, tenant: str, count: int) -> list[str]:
    """Attempts an earlier version left CREATING: it sent Stripe a success
    URL without a host, which Stripe refuses every time. Returns their holds."""
    holds = []
    for _ in range(count):
        hold = await a_hold(service.client(tenant), ttl_seconds=60)
        await service.db.execute(
            """
            INSERT INTO checkouts (hold_id, attempt, tenant_id, status, amount_minor, currency,
                                   expires_at, success_url, cancel_url)
            VALUES ($1::uuid, 1, $2, 'CREATING', $3, $4, now() + interval '31 minutes',
                    'http://', 'https://shop.example/cancelled')
            """,
            hold.hold_id,
            tenant,
            hold.total.amount_minor,
            hold.total.currency_code,
        )
        holds.append(hold.hold_id)
    return holds


async def pending_payments(
    service: Reconciling, fake: FakeStripe, tenant: str, count: int
) -> list[str]:
    """Checkouts paid by direct debit that the bank has not settled."""
    holds = []
    for _ in range(count):
        client = service.client(tenant)
        hold = await a_hold(client, ttl_seconds=60)
        session = await checkout(client, hold.hold_id)
        await fake.pay(session.session_id, async_payment=True)
        holds.append(hold.hold_id)
    return holds


async def paid_without_webhook(
    service: Reconciling, fake: FakeStripe, tenant: str
) -> booking_pb2.Hold:
    """A checkout paid by card whose webhook never came; it lapses last."""
    client = service.client(tenant)
    hold = await a_hold(client, ttl_seconds=3600)
    session = await checkout(client, hold.hold_id)
    await fake.pay(session.session_id)
    return hold


async def passes_until_confirmed(service: Reconciling, tenant: str, hold_id: str) -> int:
    """Runs reconciler passes until the hold is confirmed; how many it took
    (at most five)."""
    for done in range(1, 6):
        await service.reconcile()
        hold = await hold_status(service.client(tenant), hold_id)
        if hold.status == booking_pb2.HOLD_STATUS_CONFIRMED:
            return done
    return 99


async def test_hopeless_checkouts_of_other_tenants_do_not_starve_a_paid_one(
    service: Reconciling, fake: FakeStripe
) -> None:
    await refused_attempts(service, "t-refused", BATCH + 2)
    await pending_payments(service, fake, "t-pending", BATCH // 2)
    paid = await paid_without_webhook(service, fake, "t-paid")

    passes = await passes_until_confirmed(service, "t-paid", paid.hold_id)

    assert passes == 1  # every pass takes a due checkout of every tenant


async def test_hopeless_checkouts_of_the_same_tenant_do_not_starve_a_paid_one(
    service: Reconciling, fake: FakeStripe
) -> None:
    await pending_payments(service, fake, "t-shop", BATCH + 2)
    paid = await paid_without_webhook(service, fake, "t-shop")

    passes = await passes_until_confirmed(service, "t-shop", paid.hold_id)

    assert passes <= 2  # the pending ones looked at wait longer before the next look
    waiting = await service.db.fetch(
        "SELECT status, checks, next_check_at > now() AS later FROM checkouts"
        " WHERE tenant_id = 't-shop' AND hold_id <> $1::uuid",
        paid.hold_id,
    )
    assert {(r["status"], r["later"]) for r in waiting} == {("OPEN", True)}
    assert all(r["checks"] >= 1 for r in waiting)


async def test_an_attempt_stripe_refuses_ends_failed_with_the_reason(
    service: Reconciling, fake: FakeStripe
) -> None:
    [hold_id] = await refused_attempts(service, "t-refused", 1)

    await service.reconcile()
    await service.reconcile()

    row = await service.db.fetchrow(
        "SELECT status, failure_reason FROM checkouts WHERE hold_id = $1::uuid", hold_id
    )
    assert row["status"] == "FAILED"
    assert "Not a valid URL" in row["failure_reason"]
    refused = [
        r
        for r in fake.requests(method="POST", path="/v1/checkout/sessions")
        if r.idempotency_key == f"checkout:{hold_id}:1"
    ]
    assert len(refused) == 1  # not retried with the same refused parameters
    client = service.client("t-refused")
    corrected = await checkout(client, hold_id)  # the configured, valid URLs
    assert (corrected.attempt, corrected.status) == (2, booking_pb2.CHECKOUT_STATUS_OPEN)


async def test_a_declined_direct_debit_releases_the_hold_and_closes_its_checkout(
    service: Reconciling, fake: FakeStripe
) -> None:
    client = service.client("t-debit")
    hold = await a_hold(client, ttl_seconds=600)
    session = await checkout(client, hold.hold_id)
    await fake.pay(session.session_id, async_payment=True)
    await fake.finish_async_payment(session.session_id, succeeded=False)  # webhook lost

    await service.reconcile()

    released = await hold_status(client, hold.hold_id)
    assert released.status == booking_pb2.HOLD_STATUS_RELEASED
    row = await service.db.fetchrow(
        "SELECT status, failure_reason FROM checkouts WHERE session_id = $1", session.session_id
    )
    assert row["status"] == "FAILED"
    assert "declined" in row["failure_reason"]
