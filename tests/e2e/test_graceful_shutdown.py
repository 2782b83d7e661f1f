"""SIGTERM on a real booking process: health turns NOT_SERVING, the call in
flight completes, then the process exits cleanly."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devtools.engines import free_port
from holdfast.contracts.booking.v1 import booking_pb2
from tests.support.booking import BookingClient
from tests.support.processes import service_env, start_service, wait_until_serving

pytestmark = pytest.mark.e2e


async def _wait_for_lock_waiter(db: asyncpg.Pool, deadline: float = 10.0) -> None:
    """Returns once some booking-service query is waiting for a row lock."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while loop.time() < end:
        waiting = await db.fetchval(
            """
            SELECT count(*) FROM pg_stat_activity
            WHERE application_name = 'holdfast-booking' AND wait_event_type = 'Lock'
            """
        )
        if waiting:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the hold never started waiting for the slot lock")


async def test_sigterm_drains_the_call_in_flight(
    migrated_database: str, db: asyncpg.Pool, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "booking.log"
    process = start_service(
        "services.booking",
        service_env(
            migrated_database,
            booking_port=str(port),
            lock_timeout_ms="20000",
            shutdown_grace_seconds="20",
        ),
        log,
    )
    try:
        target = f"127.0.0.1:{port}"
        await wait_until_serving(target, process, log)
        async with grpc.aio.insecure_channel(target) as channel:
            client = BookingClient.on(channel, "e2e-shutdown")
            resource, (slot,) = await client.resource_with_slots(capacity=2)
            watch = health_pb2_grpc.HealthStub(channel).Watch(
                health_pb2.HealthCheckRequest(service="holdfast.booking.v1.BookingService")
            )
            assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING

            async with db.acquire() as conn:
                lock = conn.transaction()
                await lock.start()
                await conn.execute(
                    "SELECT 1 FROM slots WHERE id = $1::uuid FOR UPDATE", slot.slot_id
                )
                in_flight = asyncio.create_task(client.hold(resource.resource_id, [slot.slot_id]))
                await _wait_for_lock_waiter(db)

                process.send_signal(signal.SIGTERM)
                update = await asyncio.wait_for(watch.read(), 10)
                assert update.status == health_pb2.HealthCheckResponse.NOT_SERVING
                assert not in_flight.done()
                await lock.commit()

            hold = await asyncio.wait_for(in_flight, 20)
            assert hold.status == booking_pb2.HOLD_STATUS_HELD
        assert await asyncio.to_thread(process.wait, 20) == 0
        held = await db.fetchval("SELECT held FROM slots WHERE id = $1::uuid", slot.slot_id)
        assert held == 1
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
