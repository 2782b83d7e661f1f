"""All of the booking service's SQL.

Every query runs on a pool whose connections carry a client-side command
timeout and server-side `statement_timeout` and `lock_timeout` (see
`holdfast.platform.db`), so no call here can wait without bound. Database
failures leave this module as domain errors: lock timeouts, deadlocks and
serialization failures as ABORTED with a retry hint, an unreachable or
overloaded database as UNAVAILABLE.

Lock order, which keeps every writer free of deadlocks:
- reservations lock slot rows in id order, and only ever *try* holds
  (`SKIP LOCKED`) while holding slots;
- everything that starts from a hold (confirm, release, cancel, the sweeper)
  locks the hold first, then its slots in id order.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from holdfast.platform.backoff import backoff_seconds_sql
from holdfast.platform.context import current_correlation_id
from holdfast.platform.db import database_unavailable, is_recovery_conflict
from holdfast.platform.errors import aborted
from holdfast.platform.pagination import Cursor
from holdfast.platform.streams import AVAILABILITY_TOPIC, PAYMENTS_TOPIC
from holdfast.platform.telemetry import current_traceparent
from services.booking.domain import (
    Checkout,
    CheckoutStatus,
    Hold,
    HoldFilter,
    HoldLine,
    HoldStatus,
    NewResource,
    NewSlot,
    Refund,
    RefundCause,
    RefundStatus,
    RequestKey,
    Resource,
    Slot,
    in_time_order,
)
from services.booking.rules import CREATE, EXPIRE, CheckoutEffect, Transition, counter_updates

_SLOT_COLUMNS = "id, resource_id, starts_at, ends_at, capacity, held, booked, closed, version"
# Every change that moves availability also inserts an outbox row in the same
# statement: the transactional outbox (see services.booking.relay). So does a
# hold that lapses or is released while its Stripe checkout is still open:
# the relay expires the session at Stripe, after the commit.
_OUTBOX_COLUMNS = "topic, message_key, tenant_id, payload, dedupe_key, traceparent, correlation_id"
_HOLD_COLUMNS = (
    "h.id, h.resource_id, h.status, h.quantity, h.customer_ref, h.currency, h.total_minor,"
    " h.expires_at, h.payment_ref, h.status_reason, h.created_at, h.updated_at"
)


@asynccontextmanager
async def database_errors() -> AsyncIterator[None]:
    """Translates database failures into the domain's error model."""
    async with database_unavailable():
        try:
            yield
        except asyncpg.LockNotAvailableError:
            raise aborted("LOCK_TIMEOUT", "the slots are busy; retry shortly", 0.2) from None
        except (asyncpg.SerializationError, asyncpg.DeadlockDetectedError) as error:
            if is_recovery_conflict(error):
                raise  # a standby's, not a client's: database_unavailable maps it
            raise aborted("CONCURRENT_UPDATE", "a concurrent change won; retry", 0.1) from None
        except asyncpg.CheckViolationError:
            # The CHECK constraints are the second line of defence; reaching
            # them means a concurrent change raced a decision. Nothing was written.
            raise aborted(
                "CAPACITY_CONFLICT", "capacity changed concurrently; retry", 0.1
            ) from None


def _slot(row: asyncpg.Record) -> Slot:
    return Slot(
        id=row["id"],
        resource_id=row["resource_id"],
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        capacity=row["capacity"],
        held=row["held"],
        booked=row["booked"],
        closed=row["closed"],
        version=row["version"],
    )


def _resource(row: asyncpg.Record) -> Resource:
    return Resource(
        id=row["id"],
        name=row["name"],
        time_zone=row["time_zone"],
        price_minor=row["price_minor"],
        currency=row["currency"],
        default_capacity=row["default_capacity"],
        created_at=row["created_at"],
    )


def _hold(row: asyncpg.Record, lines: Iterable[HoldLine]) -> Hold:
    return Hold(
        id=row["id"],
        resource_id=row["resource_id"],
        status=HoldStatus(row["status"]),
        quantity=row["quantity"],
        customer_ref=row["customer_ref"],
        currency=row["currency"],
        total_minor=row["total_minor"],
        expires_at=row["expires_at"],
        payment_ref=row["payment_ref"] or "",
        status_reason=row["status_reason"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        lines=in_time_order(lines),
    )


def _line(row: asyncpg.Record) -> HoldLine:
    return HoldLine(row["slot_id"], row["starts_at"], row["ends_at"], row["unit_minor"])


class SlotPreview:
    """A slot as seen, without locks, before a reservation is attempted."""

    def __init__(self, row: asyncpg.Record) -> None:
        self.slot = _slot(row)
        self.unit_minor: int = row["price_minor"]
        self.currency: str = row["currency"]
        self.has_expired_holds: bool = row["has_expired_holds"]


class Transaction:
    """Statements that only make sense inside one reservation-style transaction."""

    def __init__(self, conn: asyncpg.Connection, tenant_id: str, actor: str) -> None:
        self._conn = conn
        self.tenant_id = tenant_id
        self.actor = actor
        # Stored on the outbox rows, so the invalidation links to this request's trace.
        self.traceparent = current_traceparent()

    async def claim_request(self, key: RequestKey) -> asyncpg.Record | None:
        """Claims a request id for this transaction.

        Returns None when claimed; otherwise the record of the request that
        claimed it first. A concurrent claimer waits here until the first
        commits (then sees its record) or rolls back (then claims it itself).
        """
        claimed = await self._conn.fetchval(
            """
            INSERT INTO idempotency_records (tenant_id, request_id, method, request_hash)
            VALUES ($1, $2, $3, $4)
            ON CONFLICT DO NOTHING
            RETURNING true
            """,
            self.tenant_id,
            key.request_id,
            key.method,
            key.request_hash,
        )
        if claimed:
            return None
        record: asyncpg.Record = await self._conn.fetchrow(
            """
            SELECT method, request_hash, response FROM idempotency_records
            WHERE tenant_id = $1 AND request_id = $2
            """,
            self.tenant_id,
            key.request_id,
        )
        return record

    async def store_response(self, key: RequestKey, response: bytes) -> None:
        await self._conn.execute(
            "UPDATE idempotency_records SET response = $3 WHERE tenant_id = $1 AND request_id = $2",
            self.tenant_id,
            key.request_id,
            response,
        )

    async def lock_slots(self, slot_ids: Sequence[uuid.UUID]) -> tuple[list[Slot], datetime]:
        """Locks the tenant's slots in id order; returns them and the transaction's time."""
        rows = await self._conn.fetch(
            f"""
            SELECT {_SLOT_COLUMNS}, now() AS tx_now FROM slots
            WHERE tenant_id = $1 AND id = ANY($2::uuid[])
            ORDER BY id
            FOR UPDATE
            """,
            self.tenant_id,
            list(slot_ids),
        )
        now: datetime = rows[0]["tx_now"] if rows else await self._conn.fetchval("SELECT now()")
        return [_slot(row) for row in rows], now

    async def reclaim_expired_holds(self, locked_slot_ids: Sequence[uuid.UUID]) -> int:
        """Expires lapsed holds on slots this transaction has locked.

        Only holds whose every slot is among the locked ones are taken (their
        capacity can be returned without locking more rows, so without risk
        of deadlock); holds another transaction has locked are skipped. The
        sweeper handles the rest within a second. Returns how many expired.
        """
        hold_ids = await self._conn.fetchval(
            """
            SELECT coalesce(array_agg(h.id), '{}') FROM (
                SELECT h.id FROM holds h
                WHERE h.tenant_id = $1 AND h.status = 'HELD' AND h.expires_at <= now()
                  AND h.id IN (SELECT hold_id FROM hold_lines WHERE slot_id = ANY($2::uuid[]))
                  AND NOT EXISTS (
                      SELECT 1 FROM hold_lines other
                      WHERE other.hold_id = h.id AND other.slot_id <> ALL($2::uuid[]))
                FOR UPDATE OF h SKIP LOCKED
            ) h
            """,
            self.tenant_id,
            list(locked_slot_ids),
        )
        if not hold_ids:
            return 0
        return await expire_holds(
            self._conn, hold_ids, self.actor, "reclaimed by a reservation", self.traceparent
        )

    async def insert_hold(
        self,
        hold: Hold,
        key: RequestKey | None,
        response: bytes | None,
    ) -> None:
        """Takes the hold's capacity and writes it, its lines, its audit row, its
        outbox row and its idempotency response, in one statement (one round
        trip under lock)."""
        lines = hold.lines
        await self._conn.execute(
            f"""
            WITH taken AS (
                UPDATE slots SET {counter_updates(CREATE, "$5")}
                WHERE tenant_id = $2 AND id = ANY($10::uuid[])
            ), hold AS (
                INSERT INTO holds (id, tenant_id, resource_id, status, quantity, customer_ref,
                                   currency, total_minor, expires_at, created_at, updated_at)
                VALUES ($1, $2, $3, '{CREATE.to_status}', $5, $6, $7, $8, $9, $4, $4)
            ), lines AS (
                INSERT INTO hold_lines (hold_id, tenant_id, slot_id, starts_at, ends_at, unit_minor)
                SELECT $1, $2, * FROM unnest($10::uuid[], $11::timestamptz[],
                                             $12::timestamptz[], $13::bigint[])
            ), audit AS (
                INSERT INTO audit_log (tenant_id, entity_type, entity_id, action, to_status,
                                       actor, correlation_id, details)
                VALUES ($2, 'hold', $1, '{CREATE.audit_action}', '{CREATE.to_status}', $14, $15,
                        jsonb_build_object('quantity', $5::int, 'slots', $10::uuid[]))
            ), outbox AS (
                INSERT INTO outbox ({_OUTBOX_COLUMNS})
                VALUES ('{AVAILABILITY_TOPIC}', $3::uuid::text, $2,
                        jsonb_build_object('change', '{CREATE.audit_action}',
                                           'resource_id', $3::uuid, 'slot_ids', $10::uuid[],
                                           'hold_id', $1::uuid),
                        '{CREATE.audit_action}:' || $1::uuid::text, $18, $15)
            )
            UPDATE idempotency_records SET response = $17
            WHERE tenant_id = $2 AND request_id = $16
            """,
            hold.id,
            self.tenant_id,
            hold.resource_id,
            hold.created_at,
            hold.quantity,
            hold.customer_ref,
            hold.currency,
            hold.total_minor,
            hold.expires_at,
            [line.slot_id for line in lines],
            [line.starts_at for line in lines],
            [line.ends_at for line in lines],
            [line.unit_minor for line in lines],
            self.actor,
            current_correlation_id(),
            key.request_id if key else None,
            response,
            self.traceparent,
        )

    async def lock_hold(self, hold_id: uuid.UUID) -> Hold | None:
        """Locks one of the tenant's holds and returns it."""
        rows = await self._conn.fetch(
            f"""
            SELECT {_HOLD_COLUMNS}, l.slot_id, l.starts_at, l.ends_at, l.unit_minor
            FROM holds h JOIN hold_lines l ON l.hold_id = h.id
            WHERE h.tenant_id = $1 AND h.id = $2
            FOR UPDATE OF h
            """,
            self.tenant_id,
            hold_id,
        )
        return _hold(rows[0], map(_line, rows)) if rows else None

    async def transition_hold(
        self,
        hold: Hold,
        rule: Transition,
        *,
        reason: str,
        payment_ref: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> Hold:
        """Moves a locked hold by `rule`: its capacity between the slots' held
        and booked counts, with an audit row (its details: the payment and
        `details`), an outbox row and the rule's checkout effect; one
        statement. Every status is entered at most once per hold, so the
        status names the change."""
        assert rule.from_status is hold.status, (rule, hold.status)
        args: list[Any] = [
            self.tenant_id,
            hold.id,
            rule.to_status.value,
            rule.audit_action,
            hold.slot_ids,
            reason,
            hold.status.value,
            self.actor,
            current_correlation_id(),
            payment_ref,
            hold.resource_id,
            self.traceparent,
            _json(details or {}),
            hold.payment_ref or None,
        ]
        if rule.moves_capacity:
            args.append(hold.quantity)  # $15, only in the statement of a rule that moves it
        row = await self._conn.fetchrow(_transition_sql(rule), *args)
        return _hold(row, hold.lines)

    async def create_resource(self, new: NewResource) -> Resource:
        row = await self._conn.fetchrow(
            """
            WITH created AS (
                INSERT INTO resources (tenant_id, name, time_zone, price_minor, currency,
                                       default_capacity)
                VALUES ($1, $2, $3, $4, $5, $6)
                RETURNING *
            ), audit AS (
                INSERT INTO audit_log (tenant_id, entity_type, entity_id, action, actor,
                                       correlation_id)
                SELECT $1, 'resource', id, 'resource.created', $7, $8 FROM created
            )
            SELECT * FROM created
            """,
            self.tenant_id,
            new.name,
            new.time_zone,
            new.price_minor,
            new.currency,
            new.default_capacity,
            self.actor,
            current_correlation_id(),
        )
        return _resource(row)

    async def create_slots(
        self, resource: Resource, new_slots: Sequence[NewSlot]
    ) -> list[Slot] | None:
        """Inserts the slots; None if one already exists for the same time range."""
        capacities = [
            resource.default_capacity if s.capacity is None else s.capacity for s in new_slots
        ]
        rows = await self._conn.fetch(
            f"""
            WITH created AS (
                INSERT INTO slots (tenant_id, resource_id, starts_at, ends_at, capacity)
                SELECT $1, $2, * FROM unnest($3::timestamptz[], $4::timestamptz[], $5::int[])
                ON CONFLICT (resource_id, starts_at, ends_at) DO NOTHING
                RETURNING {_SLOT_COLUMNS}
            ), audit AS (
                INSERT INTO audit_log (tenant_id, entity_type, entity_id, action, actor,
                                       correlation_id, details)
                SELECT $1, 'resource', $2, 'slots.created', $6, $7,
                       jsonb_build_object('count', (SELECT count(*) FROM created))
            ), outbox AS (
                INSERT INTO outbox ({_OUTBOX_COLUMNS})
                SELECT '{AVAILABILITY_TOPIC}', $2::uuid::text, $1,
                       jsonb_build_object('change', 'slots.created', 'resource_id', $2::uuid,
                                          'slot_ids', array_agg(id ORDER BY id)),
                       'slots.created:' || min(id::text), $8, $7
                FROM created HAVING count(*) > 0
            )
            SELECT * FROM created ORDER BY starts_at, id
            """,
            self.tenant_id,
            resource.id,
            [s.starts_at for s in new_slots],
            [s.ends_at for s in new_slots],
            capacities,
            self.actor,
            current_correlation_id(),
            self.traceparent,
        )
        if len(rows) != len(new_slots):
            return None
        return [_slot(row) for row in rows]

    async def lock_slot(self, slot_id: uuid.UUID) -> Slot | None:
        row = await self._conn.fetchrow(
            f"SELECT {_SLOT_COLUMNS} FROM slots WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
            self.tenant_id,
            slot_id,
        )
        return _slot(row) if row else None

    async def update_slot(
        self, slot: Slot, *, capacity: int, closed: bool, action: str, details: dict[str, Any]
    ) -> Slot:
        row = await self._conn.fetchrow(
            f"""
            WITH audit AS (
                INSERT INTO audit_log (tenant_id, entity_type, entity_id, action, actor,
                                       correlation_id, details)
                VALUES ($1, 'slot', $2, $5, $6, $7, $8::jsonb)
            ), outbox AS (
                INSERT INTO outbox ({_OUTBOX_COLUMNS})
                VALUES ('{AVAILABILITY_TOPIC}', $9::uuid::text, $1,
                        jsonb_build_object('change', $5::text, 'resource_id', $9::uuid,
                                           'slot_ids', ARRAY[$2::uuid]),
                        $5 || ':' || $2::uuid::text || ':v' || $10::bigint, $11, $7)
            )
            UPDATE slots SET capacity = $3, closed = $4, version = version + 1
            WHERE tenant_id = $1 AND id = $2
            RETURNING {_SLOT_COLUMNS}
            """,
            self.tenant_id,
            slot.id,
            capacity,
            closed,
            action,
            self.actor,
            current_correlation_id(),
            _json(details),
            slot.resource_id,
            # The row is locked, so the version this update writes is known.
            slot.version + 1,
            self.traceparent,
        )
        return _slot(row)

    # --- payments ------------------------------------------------------------

    async def latest_checkout(self, hold_id: uuid.UUID) -> Checkout | None:
        """The hold's newest payment attempt; call with the hold locked."""
        row = await self._conn.fetchrow(
            "SELECT * FROM checkouts WHERE hold_id = $1 ORDER BY attempt DESC LIMIT 1", hold_id
        )
        return _checkout(row) if row else None

    async def insert_checkout(self, checkout: Checkout, next_check_at: datetime) -> None:
        """A new attempt, which the reconciler looks at from `next_check_at` on."""
        await self._conn.execute(
            """
            INSERT INTO checkouts (hold_id, attempt, tenant_id, status, amount_minor, currency,
                                   expires_at, success_url, cancel_url, traceparent,
                                   correlation_id, next_check_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
            """,
            checkout.hold_id,
            checkout.attempt,
            self.tenant_id,
            checkout.status.value,
            checkout.amount_minor,
            checkout.currency,
            checkout.expires_at,
            checkout.success_url,
            checkout.cancel_url,
            checkout.traceparent,
            checkout.correlation_id,
            next_check_at,
        )

    async def close_checkouts(self, hold_id: uuid.UUID, status: CheckoutStatus) -> None:
        """Ends the hold's unresolved attempts (there is at most one): nothing
        the reconciler still needs to look at."""
        await self._conn.execute(
            """
            UPDATE checkouts SET status = $2, updated_at = now()
            WHERE hold_id = $1 AND status IN ('CREATING', 'OPEN')
            """,
            hold_id,
            status.value,
        )

    async def now(self) -> datetime:
        now: datetime = await self._conn.fetchval("SELECT now()")
        return now

    async def refund_of(self, payment_ref: str) -> Refund | None:
        """The tenant's refund of `payment_ref`, whatever its status. Every
        refund row is written with its hold locked, so under the hold's lock
        this answer cannot change for that hold."""
        row = await self._conn.fetchrow(
            "SELECT * FROM refunds WHERE payment_ref = $1 AND tenant_id = $2",
            payment_ref,
            self.tenant_id,
        )
        return _refund(row) if row else None

    async def insert_refund(
        self,
        hold: Hold,
        payment_ref: str,
        cause: RefundCause,
        reason: str,
        *,
        retry_after_seconds: float = 0.0,
        refund_id: str | None = None,
    ) -> Refund | None:
        """Records the refund of `payment_ref` with the hold locked, with an
        audit row: PENDING (Stripe is to be asked; the reconciler asks after
        `retry_after_seconds` if no one finished it by then), or, given the
        `refund_id` Stripe already made (AT_STRIPE), SUCCEEDED. None if the
        payment already has a refund (of any hold: one refund per payment)."""
        status = RefundStatus.PENDING if refund_id is None else RefundStatus.SUCCEEDED
        if cause is RefundCause.AT_STRIPE:
            status = RefundStatus.SUCCEEDED
        row = await self._conn.fetchrow(
            """
            WITH refund AS (
                INSERT INTO refunds (payment_ref, tenant_id, hold_id, refund_id, amount_minor,
                                     currency, reason, status, cause, next_attempt_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,
                        now() + make_interval(secs => $10))
                ON CONFLICT (payment_ref) DO NOTHING
                RETURNING *
            ), audit AS (
                INSERT INTO audit_log (tenant_id, entity_type, entity_id, action, from_status,
                                       to_status, actor, reason, correlation_id, details)
                SELECT $2, 'hold', $3,
                       CASE WHEN $8 = 'PENDING' THEN 'hold.refund_requested'
                            ELSE 'hold.payment_refunded' END,
                       $11, $11, $12, $7, $13,
                       jsonb_build_object('payment_ref', $1::text, 'refund_id', $4::text,
                                          'amount_minor', $5::bigint, 'cause', $9::text)
                FROM refund
            )
            SELECT * FROM refund
            """,
            payment_ref,
            self.tenant_id,
            hold.id,
            refund_id,
            hold.total_minor,
            hold.currency,
            reason,
            status.value,
            cause.value,
            retry_after_seconds,
            hold.status.value,
            self.actor,
            current_correlation_id(),
        )
        return _refund(row) if row else None

    async def complete_refund(
        self,
        hold: Hold,
        refund: Refund,
        refund_id: str | None,
        amount_minor: int,
        status_reason: str | None,
    ) -> bool:
        """Stripe made the refund: SUCCEEDED, with an audit row, once (False if
        it already was); `status_reason`, if given, becomes the hold's."""
        done: bool = await self._conn.fetchval(
            """
            WITH done AS (
                UPDATE refunds SET status = 'SUCCEEDED', refund_id = coalesce($3, refund_id),
                                   amount_minor = $4, failure_reason = '', updated_at = now()
                WHERE payment_ref = $1 AND status <> 'SUCCEEDED'
                RETURNING cause
            ), audit AS (
                INSERT INTO audit_log (tenant_id, entity_type, entity_id, action, from_status,
                                       to_status, actor, reason, correlation_id, details)
                SELECT $2, 'hold', $5, 'hold.payment_refunded', $6, $6, $7, coalesce($8, ''),
                       $9, jsonb_build_object('payment_ref', $1::text, 'refund_id', $3::text,
                                              'amount_minor', $4::bigint, 'cause', done.cause)
                FROM done
            ), reason AS (
                UPDATE holds SET status_reason = $8, updated_at = now()
                WHERE id = $5 AND $8::text IS NOT NULL AND EXISTS (SELECT 1 FROM done)
            )
            SELECT EXISTS (SELECT 1 FROM done)
            """,
            refund.payment_ref,
            self.tenant_id,
            refund_id,
            amount_minor,
            hold.id,
            hold.status.value,
            self.actor,
            status_reason,
            current_correlation_id(),
        )
        return done

    async def fail_refund(self, hold: Hold, refund: Refund, message: str) -> bool:
        """Stripe refused the refund: FAILED with its reason, on the refund and
        the hold, with an audit row; once (False if it was no longer PENDING)."""
        failed: bool = await self._conn.fetchval(
            """
            WITH failed AS (
                UPDATE refunds SET status = 'FAILED', failure_reason = $3, updated_at = now()
                WHERE payment_ref = $1 AND status = 'PENDING'
                RETURNING cause
            ), audit AS (
                INSERT INTO audit_log (tenant_id, entity_type, entity_id, action, from_status,
                                       to_status, actor, reason, correlation_id, details)
                SELECT $2, 'hold', $4, 'hold.refund_failed', $5, $5, $6, $3, $7,
                       jsonb_build_object('payment_ref', $1::text, 'cause', failed.cause)
                FROM failed
            ), reason AS (
                UPDATE holds SET status_reason = 'refund refused by Stripe: ' || $3,
                                 updated_at = now()
                WHERE id = $4 AND EXISTS (SELECT 1 FROM failed)
            )
            SELECT EXISTS (SELECT 1 FROM failed)
            """,
            refund.payment_ref,
            self.tenant_id,
            message[:500],
            hold.id,
            hold.status.value,
            self.actor,
            current_correlation_id(),
        )
        return failed


@functools.cache
def _transition_sql(rule: Transition) -> str:
    """The statement of `Transaction.transition_hold` for one rule: only the
    counters the rule moves, and only the checkout effect it has."""
    steps = [
        """audit AS (
            INSERT INTO audit_log (tenant_id, entity_type, entity_id, action, from_status,
                                   to_status, actor, reason, correlation_id, details)
            VALUES ($1, 'hold', $2, $4, $7, $3, $8, $6, $9,
                    jsonb_build_object('payment_ref', coalesce($10, $14)) || $13::jsonb)
        )""",
        f"""outbox AS (
            INSERT INTO outbox ({_OUTBOX_COLUMNS})
            VALUES ('{AVAILABILITY_TOPIC}', $11::uuid::text, $1,
                    jsonb_build_object('change', $4::text, 'resource_id', $11::uuid,
                                       'slot_ids', $5::uuid[], 'hold_id', $2::uuid),
                    $4 || ':' || $2::uuid::text, $12, $9)
        )""",
    ]
    if rule.moves_capacity:
        steps.insert(
            0,
            f"""moved AS (
            UPDATE slots SET {counter_updates(rule, "$15")}
            WHERE tenant_id = $1 AND id = ANY($5::uuid[])
        )""",
        )
    if rule.checkout is CheckoutEffect.COMPLETE:
        steps.append(
            """paid AS (
            UPDATE checkouts SET status = 'COMPLETE', updated_at = now()
            WHERE hold_id = $2 AND status IN ('CREATING', 'OPEN')
        )"""
        )
    if rule.checkout is CheckoutEffect.EXPIRE_SESSION:
        steps.append(
            f"""abandoned AS (
            INSERT INTO outbox ({_OUTBOX_COLUMNS})
            SELECT '{PAYMENTS_TOPIC}', c.session_id, $1,
                   jsonb_build_object('action', 'expire_checkout',
                                      'session_id', c.session_id, 'hold_id', $2::uuid),
                   'checkout.expire:' || c.session_id, $12, $9
            FROM checkouts c
            WHERE c.hold_id = $2 AND c.status = 'OPEN'
            ON CONFLICT (dedupe_key) DO NOTHING
        )"""
        )
    return f"""
        WITH {", ".join(steps)}
        UPDATE holds h SET status = $3, status_reason = $6, updated_at = now(),
                           payment_ref = coalesce($10, h.payment_ref)
        WHERE h.tenant_id = $1 AND h.id = $2
        RETURNING {_HOLD_COLUMNS}
        """


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, default=str)


async def expire_holds(
    conn: asyncpg.Connection,
    hold_ids: Sequence[uuid.UUID],
    actor: str,
    reason: str,
    traceparent: str | None,
) -> int:
    """Marks live holds EXPIRED and returns their capacity, with audit and outbox rows.

    The caller must hold the locks on the holds and on all their slots. The
    status guard makes a second expiry of the same hold a no-op.
    """
    expired: int = await conn.fetchval(
        f"""
        WITH expired AS (
            UPDATE holds SET status = '{EXPIRE.to_status}', status_reason = $3, updated_at = now()
            WHERE id = ANY($1::uuid[]) AND status = '{EXPIRE.from_status}'
            RETURNING id, tenant_id, resource_id, quantity
        ), returned AS (
            UPDATE slots s SET {counter_updates(EXPIRE, "back.quantity", "s.")}
            FROM (SELECT l.slot_id, sum(e.quantity)::int AS quantity
                  FROM expired e JOIN hold_lines l ON l.hold_id = e.id
                  GROUP BY l.slot_id) back
            WHERE s.id = back.slot_id
        ), audit AS (
            INSERT INTO audit_log (tenant_id, entity_type, entity_id, action, from_status,
                                   to_status, actor, reason, correlation_id)
            SELECT tenant_id, 'hold', id, '{EXPIRE.audit_action}', '{EXPIRE.from_status}',
                   '{EXPIRE.to_status}', $2, $3, $4
            FROM expired
        ), outbox AS (
            INSERT INTO outbox ({_OUTBOX_COLUMNS})
            SELECT '{AVAILABILITY_TOPIC}', e.resource_id::text, e.tenant_id,
                   jsonb_build_object('change', '{EXPIRE.audit_action}',
                                      'resource_id', e.resource_id,
                                      'slot_ids', array_agg(l.slot_id ORDER BY l.slot_id),
                                      'hold_id', e.id),
                   '{EXPIRE.audit_action}:' || e.id::text, $5, $4
            FROM expired e JOIN hold_lines l ON l.hold_id = e.id
            GROUP BY e.id, e.resource_id, e.tenant_id
        ), abandoned AS (
            INSERT INTO outbox ({_OUTBOX_COLUMNS})
            SELECT '{PAYMENTS_TOPIC}', c.session_id, c.tenant_id,
                   jsonb_build_object('action', 'expire_checkout',
                                      'session_id', c.session_id, 'hold_id', c.hold_id),
                   'checkout.expire:' || c.session_id, $5, $4
            FROM checkouts c JOIN expired e ON e.id = c.hold_id
            WHERE c.status = 'OPEN'
            ON CONFLICT (dedupe_key) DO NOTHING
        )
        SELECT count(*) FROM expired
        """,
        list(hold_ids),
        actor,
        reason,
        current_correlation_id(),
        traceparent,
    )
    return expired


class BookingRepository:
    """Reads, and the transactions that write.

    `after_commit` runs after every committed write, which is how the outbox
    relay learns at once that there may be rows to publish.
    """

    def __init__(self, pool: asyncpg.Pool, after_commit: Callable[[], None] | None = None) -> None:
        self._pool = pool
        self._after_commit = after_commit or (lambda: None)

    @asynccontextmanager
    async def transaction(self, tenant_id: str, actor: str) -> AsyncIterator[Transaction]:
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            yield Transaction(conn, tenant_id, actor)
        self._after_commit()

    # --- resources -----------------------------------------------------------

    async def get_resource(self, tenant_id: str, resource_id: uuid.UUID) -> Resource | None:
        async with database_errors():
            row = await self._pool.fetchrow(
                "SELECT * FROM resources WHERE tenant_id = $1 AND id = $2", tenant_id, resource_id
            )
        return _resource(row) if row else None

    async def list_resources(
        self, tenant_id: str, after: Cursor | None, limit: int
    ) -> list[Resource]:
        async with database_errors():
            rows = await self._pool.fetch(
                """
                SELECT * FROM resources
                WHERE tenant_id = $1
                  AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::uuid))
                ORDER BY created_at DESC, id DESC
                LIMIT $4
                """,
                tenant_id,
                after.time if after else None,
                after.uuid if after else None,
                limit,
            )
        return [_resource(row) for row in rows]

    # --- slots ---------------------------------------------------------------

    async def list_slots(
        self,
        tenant_id: str,
        resource_id: uuid.UUID,
        window: tuple[datetime, datetime] | None,
        after: Cursor | None,
        limit: int,
    ) -> list[Slot]:
        async with database_errors():
            rows = await self._pool.fetch(
                f"""
                SELECT {_SLOT_COLUMNS} FROM slots
                WHERE tenant_id = $1 AND resource_id = $2
                  AND ($3::timestamptz IS NULL OR starts_at >= $3)
                  AND ($4::timestamptz IS NULL OR starts_at < $4)
                  AND ($5::timestamptz IS NULL OR (starts_at, id) > ($5, $6::uuid))
                ORDER BY starts_at, id
                LIMIT $7
                """,
                tenant_id,
                resource_id,
                window[0] if window else None,
                window[1] if window else None,
                after.time if after else None,
                after.uuid if after else None,
                limit,
            )
        return [_slot(row) for row in rows]

    async def preview_slots(
        self, tenant_id: str, slot_ids: Sequence[uuid.UUID], quantity: int
    ) -> list[SlotPreview]:
        """Reads slots without locking, with their price and whether any lapsed
        hold could be reclaimed on the ones too full for `quantity`."""
        async with database_errors():
            rows = await self._pool.fetch(
                f"""
                SELECT {", ".join("s." + c.strip() for c in _SLOT_COLUMNS.split(","))},
                       r.price_minor, r.currency,
                       CASE WHEN s.capacity - s.held - s.booked < $3 THEN EXISTS (
                           SELECT 1 FROM hold_lines l JOIN holds h ON h.id = l.hold_id
                           WHERE l.slot_id = s.id AND h.status = 'HELD'
                             AND h.expires_at <= now())
                       ELSE false END AS has_expired_holds
                FROM slots s JOIN resources r ON r.id = s.resource_id
                WHERE s.tenant_id = $1 AND s.id = ANY($2::uuid[])
                """,
                tenant_id,
                list(slot_ids),
                quantity,
            )
        return [SlotPreview(row) for row in rows]

    async def find_request(self, tenant_id: str, request_id: str) -> asyncpg.Record | None:
        async with database_errors():
            record: asyncpg.Record | None = await self._pool.fetchrow(
                """
                SELECT method, request_hash, response FROM idempotency_records
                WHERE tenant_id = $1 AND request_id = $2
                """,
                tenant_id,
                request_id,
            )
        return record

    # --- holds ---------------------------------------------------------------

    async def get_hold(self, tenant_id: str, hold_id: uuid.UUID) -> Hold | None:
        async with database_errors():
            rows = await self._pool.fetch(
                f"""
                SELECT {_HOLD_COLUMNS}, l.slot_id, l.starts_at, l.ends_at, l.unit_minor
                FROM holds h JOIN hold_lines l ON l.hold_id = h.id
                WHERE h.tenant_id = $1 AND h.id = $2
                """,
                tenant_id,
                hold_id,
            )
        return _hold(rows[0], map(_line, rows)) if rows else None

    async def list_holds(
        self, tenant_id: str, filters: HoldFilter, after: Cursor | None, limit: int
    ) -> list[Hold]:
        async with database_errors(), self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"""
                SELECT {_HOLD_COLUMNS} FROM holds h
                WHERE h.tenant_id = $1
                  AND ($2::text[] IS NULL OR h.status = ANY($2::text[]))
                  AND ($3::uuid IS NULL OR h.resource_id = $3)
                  AND ($4::timestamptz IS NULL OR (h.created_at, h.id) < ($4, $5::uuid))
                ORDER BY h.created_at DESC, h.id DESC
                LIMIT $6
                """,
                tenant_id,
                [s.value for s in filters.statuses] or None,
                filters.resource_id,
                after.time if after else None,
                after.uuid if after else None,
                limit,
            )
            line_rows = await conn.fetch(
                "SELECT hold_id, slot_id, starts_at, ends_at, unit_minor FROM hold_lines"
                " WHERE hold_id = ANY($1::uuid[])",
                [row["id"] for row in rows],
            )
        lines: dict[uuid.UUID, list[HoldLine]] = {}
        for line in line_rows:
            lines.setdefault(line["hold_id"], []).append(_line(line))
        return [_hold(row, lines.get(row["id"], [])) for row in rows]

    # --- the sweeper ---------------------------------------------------------

    async def expire_due_holds(self, batch_size: int, actor: str) -> int:
        """Expires up to `batch_size` lapsed holds; safe with several sweepers.

        Holds another sweeper or a confirm has locked are skipped; the slots of
        the whole batch are locked in one statement in id order, so sweepers
        never deadlock each other or a reservation.
        """
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            hold_ids = await conn.fetchval(
                """
                SELECT coalesce(array_agg(id), '{}') FROM (
                    SELECT id FROM holds
                    WHERE status = 'HELD' AND expires_at <= now()
                    ORDER BY expires_at
                    LIMIT $1
                    FOR UPDATE SKIP LOCKED
                ) due
                """,
                batch_size,
            )
            if not hold_ids:
                return 0
            await conn.execute(
                """
                SELECT 1 FROM slots
                WHERE id IN (SELECT slot_id FROM hold_lines WHERE hold_id = ANY($1::uuid[]))
                ORDER BY id
                FOR UPDATE
                """,
                hold_ids,
            )
            expired = await expire_holds(conn, hold_ids, actor, "hold lapsed", None)
        self._after_commit()
        return expired

    async def prune_request_records(self, older_than_hours: int, batch_size: int) -> int:
        """Forgets request ids older than the retention window, a batch at a time."""
        async with database_errors():
            pruned: int = await self._pool.fetchval(
                """
                WITH old AS (
                    SELECT tenant_id, request_id FROM idempotency_records
                    WHERE created_at < now() - make_interval(hours => $1)
                    LIMIT $2
                ), deleted AS (
                    DELETE FROM idempotency_records r USING old
                    WHERE r.tenant_id = old.tenant_id AND r.request_id = old.request_id
                    RETURNING 1
                )
                SELECT count(*) FROM deleted
                """,
                older_than_hours,
                batch_size,
            )
        return pruned


# The outbox holds two queues, claimed apart (each with its own index, see
# migration 0009): messages for the Redis streams, which the relay publishes,
# and actions at Stripe, which the payment actions carry out.
_MESSAGES = f"topic <> '{PAYMENTS_TOPIC}'"
_ACTIONS = f"topic = '{PAYMENTS_TOPIC}'"
# A failed delivery is tried again after base ($3) * 2^(tries - 1) seconds, at
# most $4, jittered so that failures do not return as one burst.
_OUTBOX_RETRY_DELAY = backoff_seconds_sql("attempts", base="$3", cap="$4", jitter=True)


class OutboxRepository:
    """The relay's side of the outbox: claim due rows, record how publishing went.

    Claiming takes a lease instead of holding a transaction open while Redis
    (or Stripe) is called: rows are marked as attempted and not due again
    until the lease runs out, so another relay (another replica) skips them;
    if this relay dies before recording the outcome, the rows become due
    again and are published again (at-least-once).
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def claim_due(self, batch_size: int, lease_seconds: float) -> list[asyncpg.Record]:
        """Due messages for the streams (every topic but payments)."""
        return await self._claim(_MESSAGES, batch_size, lease_seconds)

    async def claim_due_actions(self, limit: int, lease_seconds: float) -> list[asyncpg.Record]:
        """Due payment actions (the payments topic)."""
        return await self._claim(_ACTIONS, limit, lease_seconds)

    async def _claim(self, queue: str, limit: int, lease_seconds: float) -> list[asyncpg.Record]:
        async with database_errors():
            rows: list[asyncpg.Record] = await self._pool.fetch(
                f"""
                WITH due AS (
                    SELECT id FROM outbox
                    WHERE published_at IS NULL AND {queue} AND next_attempt_at <= now()
                    ORDER BY next_attempt_at, id
                    LIMIT $1
                    FOR UPDATE SKIP LOCKED
                )
                UPDATE outbox o SET attempts = o.attempts + 1,
                                    next_attempt_at = now() + make_interval(secs => $2)
                FROM due WHERE o.id = due.id
                RETURNING o.id, o.topic, o.message_key, o.tenant_id, o.payload::text AS payload,
                          o.dedupe_key, o.traceparent, o.correlation_id, o.created_at,
                          o.attempts
                """,
                limit,
                lease_seconds,
            )
        return sorted(rows, key=lambda row: row["id"])

    async def mark_published(self, ids: Sequence[int]) -> None:
        async with database_errors():
            await self._pool.execute(
                "UPDATE outbox SET published_at = now(), last_error = NULL"
                " WHERE id = ANY($1::bigint[])",
                list(ids),
            )

    async def mark_failed(
        self, ids: Sequence[int], error: str, base_seconds: float, max_seconds: float
    ) -> None:
        """Schedules another attempt with exponential backoff and jitter."""
        async with database_errors():
            await self._pool.execute(
                f"""
                UPDATE outbox
                SET last_error = $2,
                    next_attempt_at = now() + make_interval(secs => {_OUTBOX_RETRY_DELAY})
                WHERE id = ANY($1::bigint[])
                """,
                list(ids),
                error[:500],
                base_seconds,
                max_seconds,
            )

    async def release(self, ids: Sequence[int]) -> None:
        """Gives claimed rows back, due at once: their claimer stops (a
        shutdown) without knowing how they went, and another replica should
        not wait for the lease to take them."""
        async with database_errors():
            await self._pool.execute(
                "UPDATE outbox SET next_attempt_at = now()"
                " WHERE id = ANY($1::bigint[]) AND published_at IS NULL",
                list(ids),
            )

    async def release_claimed_messages(self) -> int:
        """Makes every message claimed but not yet published due at once.

        A relay calls it as it starts: claims it finds were made by a relay
        that died (this replica before a restart, most likely) and would
        otherwise wait out their lease. A live replica's claims are released
        too; they may then be published twice, which consumers take in their
        stride (delivery is at-least-once). Rows waiting for a retry after a
        failure keep their backoff."""
        async with database_errors():
            released: int = await self._pool.fetchval(
                f"""
                WITH released AS (
                    UPDATE outbox SET next_attempt_at = now()
                    WHERE published_at IS NULL AND {_MESSAGES} AND attempts > 0
                      AND last_error IS NULL AND next_attempt_at > now()
                    RETURNING 1
                )
                SELECT count(*) FROM released
                """
            )
        return released

    async def backlog(self) -> tuple[int, float]:
        """How many messages wait to be published, and the age in seconds of the oldest."""
        return await self._backlog(_MESSAGES)

    async def actions_backlog(self) -> tuple[int, float]:
        """How many payment actions wait to be carried out, and the age of the oldest."""
        return await self._backlog(_ACTIONS)

    async def _backlog(self, queue: str) -> tuple[int, float]:
        async with database_errors():
            row = await self._pool.fetchrow(
                f"""
                SELECT count(*) AS pending,
                       coalesce(extract(epoch FROM now() - min(created_at)), 0) AS oldest
                FROM outbox WHERE published_at IS NULL AND {queue}
                """
            )
        return int(row["pending"]), float(row["oldest"])

    async def prune_published(self, older_than_seconds: float, batch_size: int) -> int:
        """Deletes up to a batch of rows published before the retention; how many.
        Replicas pruning at once take different rows (SKIP LOCKED)."""
        async with database_errors():
            pruned: int = await self._pool.fetchval(
                """
                WITH old AS (
                    SELECT id FROM outbox
                    WHERE published_at < now() - make_interval(secs => $1)
                    LIMIT $2
                    FOR UPDATE SKIP LOCKED
                ), deleted AS (
                    DELETE FROM outbox o USING old WHERE o.id = old.id RETURNING 1
                )
                SELECT count(*) FROM deleted
                """,
                older_than_seconds,
                batch_size,
            )
        return pruned


def _checkout(row: asyncpg.Record) -> Checkout:
    return Checkout(
        hold_id=row["hold_id"],
        attempt=row["attempt"],
        tenant_id=row["tenant_id"],
        status=CheckoutStatus(row["status"]),
        amount_minor=row["amount_minor"],
        currency=row["currency"],
        expires_at=row["expires_at"],
        success_url=row["success_url"],
        cancel_url=row["cancel_url"],
        traceparent=row["traceparent"],
        correlation_id=row["correlation_id"],
        session_id=row["session_id"],
        url=row["url"],
        failure_reason=row["failure_reason"],
    )


def _refund(row: asyncpg.Record) -> Refund:
    return Refund(
        payment_ref=row["payment_ref"],
        tenant_id=row["tenant_id"],
        hold_id=row["hold_id"],
        cause=RefundCause(row["cause"]),
        status=RefundStatus(row["status"]),
        amount_minor=row["amount_minor"],
        currency=row["currency"].strip(),
        refund_id=row["refund_id"],
        failure_reason=row["failure_reason"],
    )


@dataclass(frozen=True)
class DueCheckout:
    """An unresolved attempt for the reconciler, with its hold's state."""

    checkout: Checkout
    hold_status: HoldStatus
    hold_expires_at: datetime


def _due(row: asyncpg.Record) -> DueCheckout:
    return DueCheckout(_checkout(row), HoldStatus(row["hold_status"]), row["hold_expires_at"])


# The reconciler's backoff: the n-th look at an attempt (or try of a refund)
# comes base * 2^(n-1) seconds after the previous one, at most max seconds.
_CHECK_DELAY = backoff_seconds_sql("c.checks + 1", base="$2", cap="$3")
_REFUND_RETRY_DELAY = backoff_seconds_sql("r.attempts + 1", base="$2", cap="$3")


class PaymentRepository:
    """Checkouts and refunds: the payment side of holds."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def record_session(self, checkout: Checkout, session_id: str, url: str) -> Checkout:
        """Stores what Stripe answered; the attempt is OPEN from now on (unless
        it was resolved meanwhile, e.g. the hold was confirmed)."""
        async with database_errors():
            row = await self._pool.fetchrow(
                """
                UPDATE checkouts SET session_id = $3, url = $4, updated_at = now(),
                    status = CASE WHEN status = 'CREATING' THEN 'OPEN' ELSE status END
                WHERE hold_id = $1 AND attempt = $2
                RETURNING *
                """,
                checkout.hold_id,
                checkout.attempt,
                session_id,
                url,
            )
        return _checkout(row)

    async def set_session_status(self, session_id: str, status: CheckoutStatus) -> None:
        """Records how an attempt ended; a resolved attempt stays resolved."""
        async with database_errors():
            await self._pool.execute(
                """
                UPDATE checkouts SET status = $2, updated_at = now()
                WHERE session_id = $1 AND status IN ('CREATING', 'OPEN')
                """,
                session_id,
                status.value,
            )

    async def fail_attempt(self, checkout: Checkout, reason: str) -> None:
        """The attempt can never be paid (Stripe refused it, or its payment was
        declined): FAILED with why, unless it was resolved meanwhile."""
        async with database_errors():
            await self._pool.execute(
                """
                UPDATE checkouts SET status = 'FAILED', failure_reason = $3, updated_at = now()
                WHERE hold_id = $1 AND attempt = $2 AND status IN ('CREATING', 'OPEN')
                """,
                checkout.hold_id,
                checkout.attempt,
                reason[:500],
            )

    async def check_soon(self, session_id: str) -> None:
        """The reconciler looks at this attempt at its next pass."""
        async with database_errors():
            await self._pool.execute(
                "UPDATE checkouts SET next_check_at = now()"
                " WHERE session_id = $1 AND status IN ('CREATING', 'OPEN')",
                session_id,
            )

    async def checkout_by_session(self, session_id: str) -> DueCheckout | None:
        async with database_errors():
            row = await self._pool.fetchrow(
                """
                SELECT c.*, h.status AS hold_status, h.expires_at AS hold_expires_at
                FROM checkouts c JOIN holds h ON h.id = c.hold_id
                WHERE c.session_id = $1
                """,
                session_id,
            )
        return _due(row) if row else None

    async def claim_due_checkouts(
        self, limit: int, base_seconds: float, max_seconds: float
    ) -> list[DueCheckout]:
        """Up to `limit` unresolved attempts whose time to be looked at has
        come, fairly across tenants: each tenant's most overdue first, then
        each one's second, and so on, so one tenant's many attempts never
        crowd out another's. Claiming schedules each one's next look with
        exponential backoff, so what cannot settle yet makes way for the rest
        (and a second reconciler replica skips what this one claimed)."""
        async with database_errors():
            rows = await self._pool.fetch(
                f"""
                WITH due AS (
                    SELECT hold_id, attempt,
                           row_number() OVER (PARTITION BY tenant_id
                                              ORDER BY next_check_at, hold_id, attempt) AS turn,
                           next_check_at
                    FROM checkouts
                    WHERE status IN ('CREATING', 'OPEN') AND next_check_at <= now()
                ), picked AS (
                    SELECT hold_id, attempt, turn FROM due
                    ORDER BY turn, next_check_at, hold_id
                    LIMIT $1
                )
                UPDATE checkouts c
                SET checks = c.checks + 1,
                    next_check_at = now() + make_interval(secs => {_CHECK_DELAY})
                FROM picked p, holds h
                WHERE c.hold_id = p.hold_id AND c.attempt = p.attempt AND h.id = c.hold_id
                  AND c.status IN ('CREATING', 'OPEN') AND c.next_check_at <= now()
                RETURNING c.*, h.status AS hold_status, h.expires_at AS hold_expires_at, p.turn
                """,
                limit,
                base_seconds,
                max_seconds,
            )
        rows = sorted(rows, key=lambda row: (row["turn"], row["next_check_at"]))
        return [_due(row) for row in rows]

    async def claim_due_refunds(
        self, limit: int, base_seconds: float, max_seconds: float
    ) -> list[Refund]:
        """Up to `limit` PENDING refunds whose retry time has come (their maker
        crashed or could not reach Stripe), oldest first, each one's next try
        scheduled with exponential backoff."""
        async with database_errors():
            rows = await self._pool.fetch(
                f"""
                WITH due AS (
                    SELECT payment_ref FROM refunds
                    WHERE status = 'PENDING' AND next_attempt_at <= now()
                    ORDER BY next_attempt_at
                    LIMIT $1
                    FOR UPDATE SKIP LOCKED
                )
                UPDATE refunds r
                SET attempts = r.attempts + 1,
                    next_attempt_at = now() + make_interval(secs => {_REFUND_RETRY_DELAY})
                FROM due WHERE r.payment_ref = due.payment_ref
                RETURNING r.*
                """,
                limit,
                base_seconds,
                max_seconds,
            )
        return [_refund(row) for row in rows]

    async def find_refund(self, tenant_id: str, payment_ref: str) -> Refund | None:
        async with database_errors():
            row = await self._pool.fetchrow(
                "SELECT * FROM refunds WHERE payment_ref = $1 AND tenant_id = $2",
                payment_ref,
                tenant_id,
            )
        return _refund(row) if row else None
