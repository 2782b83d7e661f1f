"""What every change to a windowed resource's setup writes beside itself:
its audit row and the outbox row that tells availability the resource's
free windows may have moved (rules, hours and units all change what is free).
And the lock that puts one resource's setup changes in a row."""

from __future__ import annotations

import uuid
from typing import Any

from holdfast.platform.context import current_correlation_id
from services.booking.domain import Resource
from services.booking.repository.base import TransactionScope, as_json
from services.booking.repository.inventory import resource_of
from services.booking.repository.sql import availability_changed, insert_audit


class WindowChangeStatements(TransactionScope):
    async def lock_resource(self, resource_id: uuid.UUID) -> Resource | None:
        """The tenant's resource, its setup changes waiting for this
        transaction's (replacing a day's hours is a delete and an insert,
        which two at once would interleave). NO KEY UPDATE: holds that only
        reference the resource are not held up."""
        row = await self._conn.fetchrow(
            "SELECT * FROM resources WHERE tenant_id = $1 AND id = $2 FOR NO KEY UPDATE",
            self.tenant_id,
            resource_id,
        )
        return resource_of(row) if row else None

    async def record_window_change(
        self,
        resource_id: uuid.UUID,
        action: str,
        entity: tuple[str, uuid.UUID],
        details: dict[str, Any],
    ) -> None:
        """The audit row of `action` on `entity` (its type and id), and the
        resource's invalidation, named after that audit row (so each change
        has its own dedupe key)."""
        await self._conn.execute(
            f"""
            WITH audit AS (
                {
                insert_audit(
                    tenant_id="$1",
                    entity_type="$2",
                    entity_id="$3",
                    action="$4",
                    actor="$5",
                    correlation_id="$6",
                    details="$7::jsonb",
                )
            } RETURNING id
            )
            {
                availability_changed(
                    change="$4::text",
                    resource_id="$8::uuid",
                    slot_ids="ARRAY[]::uuid[]",
                    tenant_id="$1",
                    dedupe_key="$4 || ':' || $3::uuid::text || ':' || audit.id::text",
                    traceparent="$9",
                    correlation_id="$6",
                    source="FROM audit",
                )
            }
            """,
            self.tenant_id,
            entity[0],
            entity[1],
            action,
            self.actor,
            current_correlation_id(),
            as_json(details),
            resource_id,
            self.traceparent,
        )
