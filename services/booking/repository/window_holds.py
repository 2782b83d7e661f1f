"""Holds on windowed resources: what a window hold reads of its resource, and
the hold's own rows. The window on a unit is `windows`' to place; the hold's
later changes are `hold_changes`' as for any hold (the holds trigger frees the
window when the hold stops being live)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import timedelta
from zoneinfo import ZoneInfo

from holdfast.platform.context import current_correlation_id
from holdfast.scheduling.intervals import Interval
from holdfast.scheduling.stored import MINUTE, guarded_interval, hours_from_rows, rules_from_row
from services.booking.domain import (
    Hold,
    HoldWindow,
    RequestKey,
    ResourceKind,
    ResourceUnit,
    WindowSetup,
)
from services.booking.repository.base import PoolScope, TransactionScope, database_errors
from services.booking.repository.holds import hold_of
from services.booking.repository.sql import HOLD_COLUMNS, availability_changed, insert_audit
from services.booking.rules import CREATE

# window_setup's statement: $1 tenant, $2 resource, $3 and $4 the window.
# Each list is an array of anonymous records, decoded as tuples.
_WINDOW_SETUP = """
SELECT r.kind, r.time_zone, r.price_minor, r.currency, now() AS db_now,
       wr.resource_id AS rules_of, wr.min_duration_minutes, wr.max_duration_minutes,
       wr.granularity_minutes, wr.buffer_before_minutes, wr.buffer_after_minutes,
       wr.lead_time_minutes, wr.price_period_minutes,
       ARRAY(SELECT (h.weekday, h.opens, h.closes) FROM resource_hours h
             WHERE h.tenant_id = $1 AND h.resource_id = $2
             ORDER BY h.weekday, h.opens) AS weekly,
       ARRAY(SELECT (x.day, x.opens, x.closes) FROM resource_hour_exceptions x
             WHERE x.tenant_id = $1 AND x.resource_id = $2
             ORDER BY x.day, x.opens) AS exceptions,
       ARRAY(SELECT (u.id, u.resource_id, u.name, u.size, u.active, u.created_at)
             FROM resource_units u WHERE u.tenant_id = $1 AND u.resource_id = $2
             ORDER BY u.size, u.name) AS units,
       ARRAY(SELECT (u.name, w.guard_from, w.guard_until)
             FROM unit_windows w JOIN resource_units u ON u.id = w.unit_id
             WHERE w.tenant_id = $1 AND w.resource_id = $2 AND w.live
               AND w.guard_from < extract(epoch FROM $4::timestamptz)
                                  + 60 * coalesce(wr.buffer_after_minutes, 0) + 1
               AND w.guard_until > extract(epoch FROM $3::timestamptz)
                                   - 60 * coalesce(wr.buffer_before_minutes, 0) - 1
               AND NOT EXISTS (SELECT 1 FROM holds h WHERE h.id = w.hold_id
                               AND h.status = 'HELD' AND h.expires_at <= now())
             ORDER BY u.name, w.guard_from) AS busy
FROM resources r
LEFT JOIN resource_window_rules wr ON wr.tenant_id = r.tenant_id AND wr.resource_id = r.id
WHERE r.tenant_id = $1 AND r.id = $2
"""

# record_window_hold's parameters: $1 hold, $2 tenant, $3 resource, $4 actor,
# $5 correlation id, $6 quantity, $7 unit, $8 unit name, $9 window start,
# $10 window end, $11 traceparent, $12 request id, $13 stored response.
_CREATED_AUDIT = insert_audit(
    tenant_id="$2",
    entity_type="'hold'",
    entity_id="$1",
    action=f"'{CREATE.audit_action}'",
    to_status=f"'{CREATE.to_status}'",
    actor="$4",
    correlation_id="$5",
    details=(
        "jsonb_build_object('quantity', $6::int, 'unit_id', $7::uuid, 'unit_name', $8::text,"
        " 'window', jsonb_build_array($9::timestamptz, $10::timestamptz))"
    ),
)
_CREATED_OUTBOX = availability_changed(
    change=f"'{CREATE.audit_action}'",
    resource_id="$3::uuid",
    slot_ids="'{}'::uuid[]",
    hold_id="$1::uuid",
    tenant_id="$2",
    dedupe_key=f"'{CREATE.audit_action}:' || $1::uuid::text",
    traceparent="$11",
    correlation_id="$5",
)


class WindowHoldStatements(TransactionScope):
    async def insert_window_hold(
        self,
        resource_id: uuid.UUID,
        quantity: int,
        customer_ref: str,
        currency: str,
        total_minor: int,
        ttl: timedelta,
    ) -> Hold:
        """Writes a new HELD hold without lines, expiring `ttl` from the
        transaction's start; its window is placed next, and
        `record_window_hold` finishes it."""
        row = await self._conn.fetchrow(
            f"""
            INSERT INTO holds AS h (tenant_id, resource_id, status, quantity, customer_ref,
                                    currency, total_minor, expires_at)
            VALUES ($1, $2, '{CREATE.to_status}', $3, $4, $5, $6, now() + $7::interval)
            RETURNING {HOLD_COLUMNS}
            """,
            self.tenant_id,
            resource_id,
            quantity,
            customer_ref,
            currency,
            total_minor,
            ttl,
        )
        return hold_of(row, ())

    async def record_window_hold(
        self, hold: Hold, window: HoldWindow, key: RequestKey | None, response: bytes | None
    ) -> None:
        """The placed hold's audit row, its outbox row (the resource's
        availability changed) and its idempotency response, in one statement."""
        await self._conn.execute(
            f"""
            WITH audit AS (
                {_CREATED_AUDIT}
            ), outbox AS (
                {_CREATED_OUTBOX}
            )
            UPDATE idempotency_records SET response = $13
            WHERE tenant_id = $2 AND request_id = $12
            """,
            hold.id,
            self.tenant_id,
            hold.resource_id,
            self.actor,
            current_correlation_id(),
            hold.quantity,
            window.unit_id,
            window.unit_name,
            window.window.start,
            window.window.end,
            self.traceparent,
            key.request_id if key else None,
            response,
        )


class WindowHoldReads(PoolScope):
    async def window_setup(
        self, tenant_id: str, resource_id: uuid.UUID, window: Interval
    ) -> WindowSetup | None:
        """The resource as a hold on `window` needs it, in one statement (a
        hot window's refusals make nothing else); None if the tenant has no
        such resource. The busy windows are those whose guard comes within
        the buffers of `window`: the caller checks the exact overlap."""
        async with database_errors():
            row = await self._pool.fetchrow(
                _WINDOW_SETUP, tenant_id, resource_id, window.start, window.end
            )
        if row is None:
            return None
        with_rules = row["rules_of"] is not None
        zone = ZoneInfo(row["time_zone"])
        busy: dict[str, list[Interval]] = defaultdict(list)
        for unit_name, guard_from, guard_until in row["busy"]:
            busy[unit_name].append(guarded_interval(guard_from, guard_until))
        return WindowSetup(
            kind=ResourceKind(row["kind"]),
            time_zone=row["time_zone"],
            price_minor=row["price_minor"],
            currency=row["currency"],
            rules=rules_from_row(row) if with_rules else None,
            price_period=(row["price_period_minutes"] or 0) * MINUTE,
            now=row["db_now"],
            hours=hours_from_rows(
                zone,
                (dict(zip(("weekday", "opens", "closes"), r, strict=True)) for r in row["weekly"]),
                (dict(zip(("day", "opens", "closes"), r, strict=True)) for r in row["exceptions"]),
            ),
            units=tuple(ResourceUnit(*unit) for unit in row["units"]),
            busy=dict(busy),
        )

    async def resource_kind(self, tenant_id: str, resource_id: uuid.UUID) -> ResourceKind | None:
        async with database_errors():
            kind = await self._pool.fetchval(
                "SELECT kind FROM resources WHERE tenant_id = $1 AND id = $2",
                tenant_id,
                resource_id,
            )
        return None if kind is None else ResourceKind(kind)
