"""The booking service SIGKILLed in the middle of load, while its outbox relay
has rows claimed, then started again (as an orchestrator restarts a crashed
container): no hold is half-written, every committed change is published
soon after the restart, and each Idempotency-Key sent again answers the hold
it got (or gets one now if it never committed), never a second one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.support.availability import eventually
from tests.support.fault_books import (
    assert_books_balance,
    assert_outbox_published,
    database_hold_ids,
)
from tests.support.fault_load import HoldLoad
from tests.support.faults import UNLIMITED_GATEWAY, Answers, Promises, resource_with_slots
from tests.support.redis_server import RedisServer
from tests.support.stack import Stack, api_key, running_stack
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.faults

# The whole scenario, stack start and checks included.
LIMIT_SECONDS = 120
# The relay's default poll interval is 1 s: the restarted relay should have
# published everything within a few polls, far below the 30 s claim lease.
PUBLISHED_WITHIN = 10.0
# Two small slots that sell out (the load meets capacity) and a large one
# that keeps taking holds (so recovery shows as a new hold).
SLOTS = (3, 4, 200)


async def claimed_rows(db: asyncpg.Pool) -> int:
    """Outbox rows a relay has claimed and not yet reported on (their lease runs)."""
    count: int = await db.fetchval(
        "SELECT count(*) FROM outbox WHERE published_at IS NULL AND attempts > 0"
        " AND next_attempt_at > now() + interval '5 seconds'"
    )
    return count


async def test_booking_killed_mid_load(
    own_database: str,
    redis_server: RedisServer,
    tmp_path: Path,
    report_figure: Callable[[str, float], None],
) -> None:
    # The relay reaches Redis through a proxy that can hold Redis's answers,
    # and waits for them as long as it takes: the kill then lands while the
    # relay has claimed rows it has not reported on, deterministically.
    redis_proxy = TcpProxy("127.0.0.1", redis_server.port)
    booking_settings = {
        "redis_url": f"redis://{redis_proxy.address}/0",
        "redis_timeout_seconds": "60",
        # Longer than the whole test: the claims the kill leaves are published
        # after the restart because the new relay releases them, not because
        # their lease ran out.
        "relay_lease_seconds": "600",
    }
    promises = Promises()
    async with (
        asyncio.timeout(LIMIT_SECONDS),
        redis_proxy,
        running_stack(
            own_database,
            redis_server.url,
            tmp_path,
            settings={"gateway": UNLIMITED_GATEWAY, "booking": booking_settings},
        ) as stack,
        asyncpg.create_pool(own_database, min_size=1, max_size=2) as db,
        httpx.AsyncClient(
            base_url=stack.gateway, headers=await api_key(own_database), timeout=15
        ) as api,
    ):
        resource, slots = await resource_with_slots(api, SLOTS)
        answers = Answers()
        load = HoldLoad(api, resource, slots, answers, prefix="killed")
        stop = asyncio.Event()
        running = asyncio.create_task(load.run(stop))
        try:
            restarting, back = await _kill_and_restart(stack, redis_proxy, db, load, answers)
        finally:
            stop.set()
            await running
        first = answers.first("POST /v1/holds", 201, sent_after=back)
        assert first is not None
        report_figure("booking started again -> serving", back - restarting)
        report_figure(
            "booking serving again -> first hold through the gateway", first.answered_at - back
        )

        await _check_the_books(db, load, back, promises, report_figure)
        # The first answers and the retries alike.
        await promises.check("every answer as designed (no 500)", answers.assert_as_designed)
        print(f"answers: {dict(answers.summary())}")
    promises.assert_kept()


async def _kill_and_restart(
    stack: Stack, redis_proxy: TcpProxy, db: asyncpg.Pool, load: HoldLoad, answers: Answers
) -> tuple[float, float]:
    """Kills the booking service while its relay holds claimed rows, and
    starts it again; returns when it restarted and when it was back, once a
    hold went through."""
    await eventually(load.count_holds, lambda n: n >= 10)
    redis_proxy.hold_answers()
    await eventually(lambda: claimed_rows(db), lambda n: n > 0, within=20)

    stack.kill("booking")
    # The load meets a dead booking service for a moment.
    await asyncio.sleep(1.0)
    redis_proxy.release_answers()
    await redis_proxy.cut()
    await redis_proxy.start()
    restarting = time.monotonic()
    await stack.restart("booking")
    back = time.monotonic()

    async def first_hold() -> bool:
        return answers.first("POST /v1/holds", 201, sent_after=back) is not None

    await eventually(first_hold, bool, within=30)
    await asyncio.sleep(0.5)
    return restarting, back


async def _check_the_books(
    db: asyncpg.Pool,
    load: HoldLoad,
    back: float,
    promises: Promises,
    report_figure: Callable[[str, float], None],
) -> None:
    await promises.check("no hold half-written, nothing oversold", lambda: assert_books_balance(db))

    async def published_soon() -> None:
        await assert_outbox_published(db, within=PUBLISHED_WITHIN)
        report_figure("booking serving again -> outbox empty", time.monotonic() - back)

    await promises.check("every committed change published after the restart", published_soon)

    # Every key again, as a client that never heard back would send it.
    await load.retry_every_key()
    await promises.check("one hold per Idempotency-Key", load.assert_one_hold_per_key)

    async def every_hold_answered() -> None:
        assert await database_hold_ids(db) == load.hold_ids()

    await promises.check("every hold in the database was answered to its key", every_hold_answered)
    await promises.check("the books still balance", lambda: assert_books_balance(db))
