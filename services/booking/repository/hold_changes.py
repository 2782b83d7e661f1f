"""How a hold changes status after it is made: the transitions of the
booking rules (`services.booking.rules`) as statements, and the expiry of
lapsed holds (by a reservation that needs their capacity, or the sweeper).

Lock order, which keeps every writer free of deadlocks:
- reservations lock slot rows in id order, and only ever *try* holds
  (`SKIP LOCKED`) while holding slots;
- everything that starts from a hold (confirm, release, cancel, the sweeper)
  locks the hold first, then its slots in id order.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg

from holdfast.platform.context import current_correlation_id
from services.booking.domain import Hold
from services.booking.repository.base import (
    PoolScope,
    TransactionScope,
    as_json,
    database_errors,
)
from services.booking.repository.holds import hold_of
from services.booking.repository.sql import (
    HOLD_COLUMNS,
    availability_changed,
    expire_open_sessions,
    insert_audit,
)
from services.booking.rules import EXPIRE, CheckoutEffect, Transition, counter_updates


class HoldChangeStatements(TransactionScope):
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

    async def reclaim_lapsed_windows(self, unit_id: uuid.UUID, guard: tuple[int, int]) -> int:
        """Expires the lapsed holds whose live windows on the unit overlap the
        guard (epoch seconds [from, until)), when they are all that overlaps
        it: a reservation refused there by a hold nobody swept yet gets the
        unit. Holds another transaction has locked are skipped (it may be
        confirming one). Returns how many expired; their windows are freed
        by the holds trigger."""
        hold_ids = await self._conn.fetchval(
            """
            WITH overlapping AS (
                SELECT h.id, h.status = 'HELD' AND h.expires_at <= now() AS lapsed
                FROM unit_windows w JOIN holds h ON h.id = w.hold_id
                WHERE w.tenant_id = $1 AND w.unit_id = $2 AND w.live
                  AND w.guard_from < $4 AND w.guard_until > $3
            )
            SELECT coalesce(array_agg(h.id), '{}') FROM (
                SELECT h.id FROM holds h
                WHERE h.tenant_id = $1 AND h.status = 'HELD' AND h.expires_at <= now()
                  AND h.id IN (SELECT id FROM overlapping)
                  AND NOT EXISTS (SELECT 1 FROM overlapping WHERE NOT lapsed)
                FOR UPDATE OF h SKIP LOCKED
            ) h
            """,
            self.tenant_id,
            unit_id,
            *guard,
        )
        if not hold_ids:
            return 0
        return await expire_holds(
            self._conn, hold_ids, self.actor, "reclaimed by a reservation", self.traceparent
        )

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
            as_json(details or {}),
            hold.payment_ref or None,
        ]
        if rule.moves_capacity:
            args.append(hold.quantity)  # $15, only in the statement of a rule that moves it
        row = await self._conn.fetchrow(transition_statement(rule), *args)
        return hold_of(row, hold.lines, hold.window)


class HoldExpiry(PoolScope):
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


# transition_hold's parameters: $1 tenant, $2 hold, $3 new status, $4 audit
# action, $5 slot ids, $6 reason, $7 old status, $8 actor, $9 correlation id,
# $10 new payment, $11 resource, $12 traceparent, $13 details, $14 old payment,
# $15 quantity (only when the rule moves capacity).
_TRANSITION_AUDIT = insert_audit(
    tenant_id="$1",
    entity_type="'hold'",
    entity_id="$2",
    action="$4",
    from_status="$7",
    to_status="$3",
    actor="$8",
    reason="$6",
    correlation_id="$9",
    details="jsonb_build_object('payment_ref', coalesce($10, $14)) || $13::jsonb",
)
_TRANSITION_OUTBOX = availability_changed(
    change="$4::text",
    resource_id="$11::uuid",
    slot_ids="$5::uuid[]",
    hold_id="$2::uuid",
    tenant_id="$1",
    dedupe_key="$4 || ':' || $2::uuid::text",
    traceparent="$12",
    correlation_id="$9",
)
_TRANSITION_ABANDONED = expire_open_sessions(
    tenant_id="$1",
    hold_id="$2::uuid",
    traceparent="$12",
    correlation_id="$9",
    source="FROM checkouts c WHERE c.hold_id = $2 AND c.status = 'OPEN'",
)


@functools.cache
def transition_statement(rule: Transition) -> str:
    """The statement of `Transaction.transition_hold` for one rule: only the
    counters the rule moves, and only the checkout effect it has."""
    steps = [f"audit AS ({_TRANSITION_AUDIT})", f"outbox AS ({_TRANSITION_OUTBOX})"]
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
        steps.append(f"abandoned AS ({_TRANSITION_ABANDONED})")
    return f"""
        WITH {", ".join(steps)}
        UPDATE holds h SET status = $3, status_reason = $6, updated_at = now(),
                           payment_ref = coalesce($10, h.payment_ref)
        WHERE h.tenant_id = $1 AND h.id = $2
        RETURNING {HOLD_COLUMNS}
        """


# expire_holds' parameters: $1 holds, $2 actor, $3 reason, $4 correlation id,
# $5 traceparent.
_EXPIRED_AUDIT = insert_audit(
    tenant_id="tenant_id",
    entity_type="'hold'",
    entity_id="id",
    action=f"'{EXPIRE.audit_action}'",
    from_status=f"'{EXPIRE.from_status}'",
    to_status=f"'{EXPIRE.to_status}'",
    actor="$2",
    reason="$3",
    correlation_id="$4",
    source="FROM expired",
)
_EXPIRED_OUTBOX = availability_changed(
    change=f"'{EXPIRE.audit_action}'",
    resource_id="e.resource_id",
    # A windowed hold has no lines (the holds trigger frees its window): its
    # row says the resource changed, with no slots.
    slot_ids=(
        "coalesce(array_agg(l.slot_id ORDER BY l.slot_id)"
        " FILTER (WHERE l.slot_id IS NOT NULL), '{}')"
    ),
    hold_id="e.id",
    tenant_id="e.tenant_id",
    dedupe_key=f"'{EXPIRE.audit_action}:' || e.id::text",
    traceparent="$5",
    correlation_id="$4",
    source=(
        "FROM expired e LEFT JOIN hold_lines l ON l.hold_id = e.id"
        " GROUP BY e.id, e.resource_id, e.tenant_id"
    ),
)
_EXPIRED_ABANDONED = expire_open_sessions(
    tenant_id="c.tenant_id",
    hold_id="c.hold_id",
    traceparent="$5",
    correlation_id="$4",
    source="FROM checkouts c JOIN expired e ON e.id = c.hold_id WHERE c.status = 'OPEN'",
)


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
            {_EXPIRED_AUDIT}
        ), outbox AS (
            {_EXPIRED_OUTBOX}
        ), abandoned AS (
            {_EXPIRED_ABANDONED}
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
