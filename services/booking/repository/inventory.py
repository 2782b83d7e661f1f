"""Resources and slots: what can be booked, and how much of it is taken."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from holdfast.platform.context import current_correlation_id
from holdfast.platform.pagination import Cursor
from holdfast.platform.records import from_record
from services.booking.domain import (
    NewResource,
    NewSlot,
    Resource,
    ResourceKind,
    Slot,
    SlotPreview,
)
from services.booking.repository.base import (
    PoolScope,
    TransactionScope,
    as_json,
    database_errors,
)
from services.booking.repository.sql import (
    SLOT_COLUMNS,
    availability_changed,
    insert_audit,
    listed,
)


@functools.cache
def preview_statement(slot_count: int) -> str:
    """The preview read of a hold on `slot_count` slots ($2), built once per
    count so that it is planned once per connection (`listed`)."""
    return f"""
    SELECT {", ".join("s." + c.strip() for c in SLOT_COLUMNS.split(","))},
           r.price_minor, r.currency, now() AS read_at,
           CASE WHEN s.capacity - s.held - s.booked < $3 THEN EXISTS (
               SELECT 1 FROM hold_lines l JOIN holds h ON h.id = l.hold_id
               WHERE l.slot_id = s.id AND h.status = 'HELD'
                 AND h.expires_at <= now())
           ELSE false END AS has_expired_holds
    FROM slots s JOIN resources r ON r.id = s.resource_id
    WHERE s.tenant_id = $1 AND s.id = ANY({listed("$2::uuid[]", slot_count)})
    """


def _slot(row: asyncpg.Record) -> Slot:
    return from_record(Slot, row)


def resource_of(row: asyncpg.Record) -> Resource:
    return from_record(Resource, row, kind=ResourceKind(row["kind"]))


def _preview(row: asyncpg.Record) -> SlotPreview:
    return SlotPreview(_slot(row), row["price_minor"], row["currency"], row["has_expired_holds"])


class InventoryStatements(TransactionScope):
    async def lock_slots(self, slot_ids: Sequence[uuid.UUID]) -> tuple[list[Slot], datetime]:
        """Locks the tenant's slots in id order; returns them and the transaction's time."""
        rows = await self._conn.fetch(
            f"""
            SELECT {SLOT_COLUMNS}, now() AS tx_now FROM slots
            WHERE tenant_id = $1 AND id = ANY($2::uuid[])
            ORDER BY id
            FOR UPDATE
            """,
            self.tenant_id,
            list(slot_ids),
        )
        now: datetime = rows[0]["tx_now"] if rows else await self._conn.fetchval("SELECT now()")
        return [_slot(row) for row in rows], now

    async def create_resource(self, new: NewResource) -> Resource:
        row = await self._conn.fetchrow(
            f"""
            WITH created AS (
                INSERT INTO resources (tenant_id, name, time_zone, price_minor, currency,
                                       default_capacity)
                VALUES ($1, $2, $3, $4, $5, $6)
                RETURNING *
            ), audit AS (
                {
                insert_audit(
                    tenant_id="$1",
                    entity_type="'resource'",
                    entity_id="id",
                    action="'resource.created'",
                    actor="$7",
                    correlation_id="$8",
                    source="FROM created",
                )
            }
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
        return resource_of(row)

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
                RETURNING {SLOT_COLUMNS}
            ), audit AS (
                {
                insert_audit(
                    tenant_id="$1",
                    entity_type="'resource'",
                    entity_id="$2",
                    action="'slots.created'",
                    actor="$6",
                    correlation_id="$7",
                    details="jsonb_build_object('count', (SELECT count(*) FROM created))",
                )
            }
            ), outbox AS (
                {
                availability_changed(
                    change="'slots.created'",
                    resource_id="$2::uuid",
                    slot_ids="array_agg(id ORDER BY id)",
                    tenant_id="$1",
                    dedupe_key="'slots.created:' || min(id::text)",
                    traceparent="$8",
                    correlation_id="$7",
                    source="FROM created HAVING count(*) > 0",
                )
            }
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
            f"SELECT {SLOT_COLUMNS} FROM slots WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
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
                {
                insert_audit(
                    tenant_id="$1",
                    entity_type="'slot'",
                    entity_id="$2",
                    action="$5",
                    actor="$6",
                    correlation_id="$7",
                    details="$8::jsonb",
                )
            }
            ), outbox AS (
                {
                availability_changed(
                    change="$5::text",
                    resource_id="$9::uuid",
                    slot_ids="ARRAY[$2::uuid]",
                    tenant_id="$1",
                    dedupe_key="$5 || ':' || $2::uuid::text || ':v' || $10::bigint",
                    traceparent="$11",
                    correlation_id="$7",
                )
            }
            )
            UPDATE slots SET capacity = $3, closed = $4, version = version + 1
            WHERE tenant_id = $1 AND id = $2
            RETURNING {SLOT_COLUMNS}
            """,
            self.tenant_id,
            slot.id,
            capacity,
            closed,
            action,
            self.actor,
            current_correlation_id(),
            as_json(details),
            slot.resource_id,
            # The row is locked, so the version this update writes is known.
            slot.version + 1,
            self.traceparent,
        )
        return _slot(row)


class InventoryReads(PoolScope):
    async def get_resource(self, tenant_id: str, resource_id: uuid.UUID) -> Resource | None:
        async with database_errors():
            row = await self._pool.fetchrow(
                "SELECT * FROM resources WHERE tenant_id = $1 AND id = $2", tenant_id, resource_id
            )
        return resource_of(row) if row else None

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
        return [resource_of(row) for row in rows]

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
                SELECT {SLOT_COLUMNS} FROM slots
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
    ) -> tuple[list[SlotPreview], datetime | None]:
        """Reads slots without locking, with their price and whether any lapsed
        hold could be reclaimed on the ones too full for `quantity`; and the
        database's time of the read (None when no slot was found)."""
        async with database_errors():
            rows = await self._pool.fetch(
                preview_statement(len(slot_ids)),
                tenant_id,
                list(slot_ids),
                quantity,
            )
        return [_preview(row) for row in rows], rows[0]["read_at"] if rows else None
