"""The availability service's SQL: reads only, replica-safe.

The pool behind it may point at a read replica
(`HOLDFAST_AVAILABILITY_DATABASE_URL`), and nothing here writes.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from holdfast.platform.db import database_unavailable


class TooManySlotsError(Exception):
    def __init__(self, resource_id: uuid.UUID) -> None:
        super().__init__(str(resource_id))
        self.resource_id = resource_id


class AvailabilityRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def read_slots(
        self,
        tenant_id: str,
        resource_ids: Sequence[uuid.UUID],
        start: datetime,
        end: datetime,
        max_slots: int,
    ) -> dict[uuid.UUID, list[asyncpg.Record]]:
        """The slots of each of the tenant's resources that start in [start, end).

        Resources that do not exist (or are another tenant's) are absent from
        the answer; one with more than `max_slots` slots in range raises
        TooManySlotsError.
        """
        async with database_unavailable():
            rows = await self._pool.fetch(
                """
                SELECT r.id AS resource_id, s.id, s.starts_at, s.ends_at, s.capacity, s.held,
                       s.booked, s.closed
                FROM resources r
                LEFT JOIN LATERAL (
                    SELECT * FROM slots
                    WHERE tenant_id = r.tenant_id AND resource_id = r.id
                      AND starts_at >= $3 AND starts_at < $4
                    ORDER BY starts_at, id
                    LIMIT $5 + 1
                ) s ON true
                WHERE r.tenant_id = $1 AND r.id = ANY($2::uuid[])
                ORDER BY r.id, s.starts_at, s.id
                """,
                tenant_id,
                list(resource_ids),
                start,
                end,
                max_slots,
            )
        found: dict[uuid.UUID, list[asyncpg.Record]] = {}
        for row in rows:
            slots = found.setdefault(row["resource_id"], [])
            if row["id"] is not None:
                slots.append(row)
        for resource_id, slots in found.items():
            if len(slots) > max_slots:
                raise TooManySlotsError(resource_id)
        return found
