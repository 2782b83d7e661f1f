"""After `bench.gateway`'s run: is everything released, and do Postgres and
the gateway's availability agree?"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import asyncpg
import httpx

from bench.gateway_users import Record, Resource

# After the run: how long the gateway's availability may take to show every
# release (outbox, relay, stream, cache invalidation).
CONVERGE_SECONDS = 10.0


@dataclass
class Consistency:
    holds: dict[str, int]
    slots_held: int
    slots_booked: int
    availability_held: int | None
    problems: list[str]

    def figures(self) -> dict[str, Any]:
        return asdict(self)


async def gateway_held(client: httpx.AsyncClient, resources: Sequence[Resource]) -> int:
    total = 0
    for resource in resources:
        answer = await client.get(
            f"/v1/resources/{resource.id}/availability", params=resource.window
        )
        answer.raise_for_status()
        total += sum(slot["held"] for slot in answer.json()["slots"])
    return total


async def check_state(
    conn: asyncpg.Connection,
    client: httpx.AsyncClient,
    tenant: str,
    resources: Sequence[Resource],
    record: Record,
) -> Consistency:
    rows = await conn.fetch(
        "SELECT status, count(*) AS n FROM holds WHERE tenant_id = $1 GROUP BY status", tenant
    )
    holds = {row["status"]: row["n"] for row in rows}
    sums = await conn.fetchrow(
        "SELECT coalesce(sum(held), 0) AS held, coalesce(sum(booked), 0) AS booked"
        " FROM slots WHERE tenant_id = $1",
        tenant,
    )
    live = await conn.fetchval(
        "SELECT coalesce(sum(h.quantity), 0) FROM holds h"
        " WHERE h.tenant_id = $1 AND h.status = 'HELD'",
        tenant,
    )
    problems = []
    still_held = holds.get("HELD", 0)
    if still_held > record.unknown_holds + record.release_failures:
        problems.append(
            f"{still_held} holds still HELD in Postgres, but only {record.unknown_holds}"
            f" hold requests went unanswered and {record.release_failures} releases failed"
        )
    made = sum(holds.values())
    if not record.holds_taken <= made <= record.holds_taken + record.unknown_holds:
        problems.append(
            f"Postgres has {made} holds; the bench was given {record.holds_taken}"
            f" (and {record.unknown_holds} requests went unanswered)"
        )
    released = holds.get("RELEASED", 0)
    if not record.holds_released <= released <= record.holds_released + record.release_failures:
        problems.append(
            f"{released} holds RELEASED in Postgres; {record.holds_released} releases answered,"
            f" {record.release_failures} failed"
        )
    if sums["held"] != live:
        problems.append(f"the slots count {sums['held']} held, the live holds {live}")
    if sums["booked"] != 0:
        problems.append(f"the slots count {sums['booked']} booked; the bench books nothing")
    seen = await _converged_held(client, resources, sums["held"], problems)
    return Consistency(holds, sums["held"], sums["booked"], seen, problems)


async def _converged_held(
    client: httpx.AsyncClient, resources: Sequence[Resource], held: int, problems: list[str]
) -> int | None:
    """What the gateway shows held once it agrees with Postgres' `held`, or
    when it gave up waiting (a problem then)."""
    # The gateway's availability (the availability service's caches) must
    # come to agree with Postgres.
    seen: int | None = None
    deadline = time.monotonic() + CONVERGE_SECONDS
    while True:
        try:
            seen = await gateway_held(client, resources)
        except httpx.HTTPError as error:
            problems.append(f"reading availability after the run: {error}")
            break
        if seen == held:
            break
        if time.monotonic() > deadline:
            problems.append(
                f"after {CONVERGE_SECONDS:.0f} s the gateway still shows {seen} held,"
                f" Postgres {held}"
            )
            break
        await asyncio.sleep(0.2)
    return seen
