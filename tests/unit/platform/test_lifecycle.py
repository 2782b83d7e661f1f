"""The start and stop order every service relies on, and the periodic loop
every background task runs: no database needed."""

from __future__ import annotations

import asyncio
import logging

import pytest

from holdfast.platform.errors import unavailable
from holdfast.platform.lifecycle import Lifecycle
from holdfast.platform.periodic import PeriodicTask


async def test_parts_start_in_order_and_stop_in_reverse() -> None:
    seen: list[str] = []

    async def stop_pool() -> None:
        seen.append("stop pool")

    parts = Lifecycle()
    parts.add(
        "metrics",
        start=lambda: seen.append("start metrics"),
        stop=lambda: seen.append("stop metrics"),
    )
    parts.add("pool", stop=stop_pool)
    await parts.start()
    parts.add(
        "server", start=lambda: seen.append("start server"), stop=lambda: seen.append("stop server")
    )
    await parts.start()
    await parts.stop()
    assert seen == ["start metrics", "start server", "stop server", "stop pool", "stop metrics"]
    assert parts.names == ["metrics", "pool", "server"]


async def test_a_periodic_task_survives_failing_passes(caplog: pytest.LogCaptureFixture) -> None:
    passes = 0
    log = logging.getLogger("tests.periodic")

    async def run_pass() -> None:
        nonlocal passes
        passes += 1
        if passes == 1:
            raise unavailable("DATABASE_UNAVAILABLE", "the database is away")
        if passes == 2:
            raise RuntimeError("a bug")

    wake = asyncio.Event()
    task = PeriodicTask(
        "test",
        run_pass,
        interval=3600,
        log=log,
        skipped="pass skipped",
        failed="pass failed",
        wake=wake,
    )
    with caplog.at_level(logging.WARNING, "tests.periodic"):
        task.start()
        for _ in range(2):
            await asyncio.sleep(0.01)
            wake.set()
        await asyncio.sleep(0.01)
        await task.stop()
    assert passes == 3
    assert caplog.messages[0].startswith("pass skipped: ")
    assert caplog.messages[1] == "pass failed"
