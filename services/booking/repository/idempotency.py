"""Request ids (AIP-155): the first response of each idempotent request."""

from __future__ import annotations

import asyncpg

from services.booking.domain import FirstRequest, RequestKey
from services.booking.repository.base import PoolScope, TransactionScope, database_errors


def _first_request(row: asyncpg.Record | None) -> FirstRequest | None:
    if row is None:
        return None
    response = row["response"]
    return FirstRequest(
        row["method"], bytes(row["request_hash"]), None if response is None else bytes(response)
    )


class IdempotencyStatements(TransactionScope):
    async def claim_request(self, key: RequestKey) -> FirstRequest | None:
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
        row = await self._conn.fetchrow(
            """
            SELECT method, request_hash, response FROM idempotency_records
            WHERE tenant_id = $1 AND request_id = $2
            """,
            self.tenant_id,
            key.request_id,
        )
        return _first_request(row)

    async def store_response(self, key: RequestKey, response: bytes) -> None:
        await self._conn.execute(
            "UPDATE idempotency_records SET response = $3 WHERE tenant_id = $1 AND request_id = $2",
            self.tenant_id,
            key.request_id,
            response,
        )


class IdempotencyReads(PoolScope):
    async def find_request(self, tenant_id: str, request_id: str) -> FirstRequest | None:
        async with database_errors():
            row = await self._pool.fetchrow(
                """
                SELECT method, request_hash, response FROM idempotency_records
                WHERE tenant_id = $1 AND request_id = $2
                """,
                tenant_id,
                request_id,
            )
        return _first_request(row)

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
