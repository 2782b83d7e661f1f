"""A hold on slots placed in one statement (repository.placement): all of it
written when every slot fits, nothing at all when one does not, even when the
preview it was made from said it would fit."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import asyncpg
import pytest

from services.booking import capacity
from services.booking.domain import Hold, HoldRequest, RequestKey
from services.booking.repository import BookingRepository
from services.booking.repository.inventory import preview_statement
from services.booking.repository.placement import place_hold_statement, placement_arguments
from tests.support.booking import BookingClient

ACTOR = "test:placement"


async def _hold_as_previewed(
    repo: BookingRepository, tenant: str, resource_id: str, slot_ids: list[str]
) -> Hold:
    """The hold the service would place, made from the preview read now."""
    request = HoldRequest(
        uuid.UUID(resource_id),
        tuple(uuid.UUID(s) for s in slot_ids),
        quantity=1,
        customer_ref="cust-1",
        ttl=timedelta(minutes=10),
    )
    previews, read_at = await repo.preview_slots(tenant, request.slot_ids, 1)
    assert read_at is not None
    assert not capacity.clearly_unavailable(previews, 1)
    return capacity.new_hold(request, previews, [p.slot for p in previews], read_at)


async def _written_for(
    db: asyncpg.Pool, tenant: str, hold: Hold, request_id: str
) -> dict[str, int]:
    row = await db.fetchrow(
        """
        SELECT (SELECT count(*) FROM holds WHERE id = $2) AS holds,
               (SELECT count(*) FROM hold_lines WHERE hold_id = $2) AS lines,
               (SELECT count(*) FROM audit_log
                WHERE entity_id = $2 AND action = 'hold.created') AS audit,
               (SELECT count(*) FROM outbox WHERE dedupe_key = 'hold.created:' || $2::text)
                   AS outbox,
               (SELECT count(*) FROM idempotency_records
                WHERE tenant_id = $1 AND request_id = $3) AS request_ids
        """,
        tenant,
        hold.id,
        request_id,
    )
    return dict(row)


async def test_a_hold_that_fits_is_written_whole_with_its_response(
    client: BookingClient, db: asyncpg.Pool
) -> None:
    resource, slots = await client.resource_with_slots(count=2, capacity=3)
    repo = BookingRepository(db)
    slot_ids = [s.slot_id for s in slots]
    hold = await _hold_as_previewed(repo, client.tenant, resource.resource_id, slot_ids)
    key = RequestKey("place-1", "CreateHold", b"hash")

    placement = await repo.place_hold(client.tenant, ACTOR, hold, key, b"the response")

    assert placement.placed
    written = await _written_for(db, client.tenant, hold, "place-1")
    assert written == {"holds": 1, "lines": 2, "audit": 1, "outbox": 1, "request_ids": 1}
    stored = await db.fetchval(
        "SELECT response FROM idempotency_records WHERE tenant_id = $1 AND request_id = $2",
        client.tenant,
        "place-1",
    )
    assert bytes(stored) == b"the response"
    held = await db.fetch("SELECT held FROM slots WHERE id = ANY($1::uuid[])", slot_ids)
    assert [r["held"] for r in held] == [1, 1]


async def test_a_hold_that_no_longer_fits_writes_nothing(
    client: BookingClient, db: asyncpg.Pool
) -> None:
    resource, slots = await client.resource_with_slots(count=2, capacity=1)
    repo = BookingRepository(db)
    slot_ids = [s.slot_id for s in slots]
    hold = await _hold_as_previewed(repo, client.tenant, resource.resource_id, slot_ids)
    # Between the preview and the placement, another buyer takes one slot.
    await client.hold(resource.resource_id, [slot_ids[1]])

    placement = await repo.place_hold(
        client.tenant, ACTOR, hold, RequestKey("place-2", "CreateHold", b"hash"), b"response"
    )

    assert not placement.placed
    free = {str(slot.id): slot.free for slot, _ in placement.slots}
    assert free == {slot_ids[0]: 1, slot_ids[1]: 0}
    written = await _written_for(db, client.tenant, hold, "place-2")
    assert written == {"holds": 0, "lines": 0, "audit": 0, "outbox": 0, "request_ids": 0}
    held = await db.fetch(
        "SELECT held FROM slots WHERE id = ANY($1::uuid[]) ORDER BY starts_at", slot_ids
    )
    assert [r["held"] for r in held] == [0, 1]


async def _plan_cost(
    conn: asyncpg.Connection, sql: str, args: tuple[object, ...], mode: str
) -> float:
    """The planner's estimate for `sql` run with `args` as a prepared statement
    under `mode`: force_custom_plan (planned for these values) or
    force_generic_plan (planned once for any values)."""
    types = [t.name for t in (await conn.prepare(sql)).get_parameters()]
    await conn.execute(f"SET plan_cache_mode = {mode}")
    await conn.execute(f"PREPARE costed ({', '.join(types)}) AS {sql}")
    try:
        # EXECUTE takes no parameters: the values go in as quoted literals.
        given = [
            f"{await conn.fetchval(f'SELECT quote_nullable($1::{t})', arg)}::{t}"
            for arg, t in zip(args, types, strict=True)
        ]
        plan = await conn.fetchval(f"EXPLAIN (FORMAT JSON) EXECUTE costed ({', '.join(given)})")
    finally:
        await conn.execute("DEALLOCATE costed")
        await conn.execute("RESET plan_cache_mode")
    return float(json.loads(plan)[0]["Plan"]["Total Cost"])


@pytest.mark.parametrize("slot_count", [1, 3])
async def test_a_holds_statements_are_planned_once_not_per_call(
    client: BookingClient, db: asyncpg.Pool, slot_count: int
) -> None:
    # Postgres re-plans a prepared statement on every run (a custom plan)
    # unless its generic plan, made once for any values, looks no dearer.
    # With the slots as an array of unknown length it guessed ten and the
    # generic plan looked twice as dear, so the hold's two statements were
    # planned on every call: more of the database's CPU than running them.
    resource, slots = await client.resource_with_slots(count=slot_count, capacity=5)
    slot_ids = [s.slot_id for s in slots]
    repo = BookingRepository(db)
    hold = await _hold_as_previewed(repo, client.tenant, resource.resource_id, slot_ids)
    statements = {
        "preview": (
            preview_statement(slot_count),
            (client.tenant, list(hold.slot_ids), hold.quantity),
        ),
        "placement": (
            place_hold_statement(slot_count),
            placement_arguments(hold, client.tenant, ACTOR, None, None),
        ),
    }
    async with db.acquire() as conn:
        for name, (sql, args) in statements.items():
            generic = await _plan_cost(conn, sql, args, "force_generic_plan")
            custom = await _plan_cost(conn, sql, args, "force_custom_plan")
            assert generic <= custom * 1.05, (name, generic, custom)
