"""What `bench.webhooks` reads back from Postgres and the webhook service's
/metrics: the database's clock, the inbox draining, and when each event was
stored, claimed and applied."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import asyncpg

from bench.grpc_load import (
    CALL_TIMEOUT_SECONDS,
)
from bench.metrics import Samples
from bench.stats import Latencies
from bench.webhook_delivery import Delivery

CLOCK_SAMPLES = 9
ACK_METRIC = "holdfast_webhook_ack_seconds"
PROCESSING_METRIC = "holdfast_webhook_processing_seconds"
PROCESSED_METRIC = "holdfast_webhook_events_processed_total"


@dataclass(frozen=True)
class Clock:
    """Postgres' clock minus the client's, and how closely that is known."""

    offset: float
    uncertainty: float


async def measure_clock(conn: asyncpg.Connection) -> Clock:
    """The offset from the quickest of a few round trips, read at its middle."""
    samples = []
    for _ in range(CLOCK_SAMPLES):
        before = time.time()
        server: float = await conn.fetchval("SELECT extract(epoch FROM clock_timestamp())::float8")
        after = time.time()
        samples.append((after - before, server - (before + after) / 2))
    rtt, offset = min(samples)
    return Clock(offset, rtt / 2)


async def wait_processed(
    conn: asyncpg.Connection, event_ids: Sequence[str], within: float, poll: float
) -> bool:
    """Until every event is stored and applied (or dead-lettered); False on timeout."""
    deadline = time.monotonic() + within
    while True:
        done = await conn.fetchval(
            """
            SELECT count(*) FROM stripe_events
            WHERE event_id = ANY($1::text[]) AND status IN ('APPLIED', 'IGNORED', 'DEAD')
            """,
            list(event_ids),
            timeout=CALL_TIMEOUT_SECONDS,
        )
        if done == len(event_ids):
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(poll)


@dataclass
class Ledger:
    """What Postgres holds for the run: the inbox rows of its events, and the
    tenant's holds with their confirmations (audit rows)."""

    events: dict[str, asyncpg.Record]
    holds: dict[str, asyncpg.Record]
    confirmations: dict[str, asyncpg.Record]

    @classmethod
    async def read(cls, conn: asyncpg.Connection, tenant: str, event_ids: Sequence[str]) -> Ledger:
        events = await conn.fetch(
            """
            SELECT event_id, status, outcome, attempts,
                   extract(epoch FROM received_at)::float8 AS received,
                   extract(epoch FROM processed_at)::float8 AS claimed
            FROM stripe_events WHERE event_id = ANY($1::text[])
            """,
            list(event_ids),
            timeout=CALL_TIMEOUT_SECONDS,
        )
        holds = await conn.fetch(
            "SELECT id::text AS id, status, payment_ref FROM holds WHERE tenant_id = $1",
            tenant,
            timeout=CALL_TIMEOUT_SECONDS,
        )
        confirmations = await conn.fetch(
            """
            SELECT entity_id::text AS hold_id, count(*) AS rows,
                   extract(epoch FROM min(created_at))::float8 AS confirmed
            FROM audit_log WHERE tenant_id = $1 AND action = 'hold.confirmed'
            GROUP BY entity_id
            """,
            tenant,
            timeout=CALL_TIMEOUT_SECONDS,
        )
        return cls(
            {r["event_id"]: r for r in events},
            {r["id"]: r for r in holds},
            {r["hold_id"]: r for r in confirmations},
        )

    @property
    def confirmation_rows(self) -> int:
        return sum(r["rows"] for r in self.confirmations.values())

    def problems(self, deliveries: Sequence[Delivery]) -> list[str]:
        """Every hold CONFIRMED once, by its event's payment; every event applied."""
        found: list[str] = []
        if len(self.holds) != len(deliveries):
            found.append(f"the tenant has {len(self.holds)} holds, not {len(deliveries)}")
        for d in deliveries:
            hold = self.holds.get(d.hold_id)
            confirmed = self.confirmations.get(d.hold_id)
            event = self.events.get(d.event_id)
            if event is None:
                found.append(f"event {d.event_id} (hold {d.hold_id}) was never stored")
            elif (event["status"], event["outcome"]) != ("APPLIED", "confirmed"):
                found.append(f"event {d.event_id}: {event['status']} {event['outcome']!r}")
            if hold is None or hold["status"] != "CONFIRMED":
                found.append(f"hold {d.hold_id} is {hold['status'] if hold else 'missing'}")
            elif hold["payment_ref"] != d.payment_ref:
                found.append(f"hold {d.hold_id} was paid by {hold['payment_ref']}")
            if confirmed is None or confirmed["rows"] != 1:
                rows = confirmed["rows"] if confirmed else 0
                found.append(f"hold {d.hold_id} was confirmed {rows} times")
        return found


@dataclass
class Timings:
    """Per event, in seconds on the client's clock: first send -> stored ->
    claimed by a processor worker -> confirmed by the booking service."""

    to_confirmed: list[float] = field(default_factory=list)
    to_stored: list[float] = field(default_factory=list)
    queued: list[float] = field(default_factory=list)
    applying: list[float] = field(default_factory=list)
    first_sent: float = math.nan
    last_answered: float = math.nan  # the acknowledgement phase's end
    last_confirmed: float = math.nan
    # Confirmed before the last delivery was answered.
    confirmed_while_delivering: int = 0

    @classmethod
    def of(cls, deliveries: Sequence[Delivery], ledger: Ledger, clock: Clock) -> Timings:
        timings = cls()
        sent_times, answered_times, confirmed_times = [], [], []
        for d in deliveries:
            event = ledger.events.get(d.event_id)
            confirmed = ledger.confirmations.get(d.hold_id)
            if not d.answers or event is None or confirmed is None:
                continue
            sent = d.answers[0].sent_at
            answered_times.append(sent + d.answers[0].seconds)
            received = event["received"] - clock.offset
            done = confirmed["confirmed"] - clock.offset
            sent_times.append(sent)
            confirmed_times.append(done)
            timings.to_confirmed.append(done - sent)
            timings.to_stored.append(received - sent)
            if event["claimed"] is not None:
                claimed = event["claimed"] - clock.offset
                timings.queued.append(claimed - received)
                timings.applying.append(done - claimed)
        if sent_times:
            timings.first_sent, timings.last_confirmed = min(sent_times), max(confirmed_times)
            timings.last_answered = max(answered_times)
            timings.confirmed_while_delivering = sum(
                1 for done in confirmed_times if done <= timings.last_answered
            )
        return timings

    @property
    def span(self) -> float:
        """First send to last confirmation."""
        return self.last_confirmed - self.first_sent

    @property
    def rates(self) -> tuple[float, float]:
        """Confirmations per second while deliveries came, and after."""
        during = self.last_answered - self.first_sent
        after = self.last_confirmed - self.last_answered
        rest = len(self.to_confirmed) - self.confirmed_while_delivering
        return (
            self.confirmed_while_delivering / during if during > 0 else math.nan,
            rest / after if after > 0 and rest else math.nan,
        )

    def figures(self) -> dict[str, Any]:
        def summary(seconds: list[float]) -> dict[str, float]:
            return {k: round(v, 3) for k, v in asdict(Latencies.of(seconds)).items()}

        span = self.span if self.to_confirmed else math.nan
        during, after = self.rates
        return {
            **summary(self.to_confirmed),
            "confirmed_per_s": round(len(self.to_confirmed) / span, 1) if span > 0 else None,
            "first_send_to_last_confirmed_s": round(span, 3) if self.to_confirmed else None,
            "confirmed_while_delivering": self.confirmed_while_delivering,
            "confirmed_per_s_while_delivering": round(during, 1),
            "confirmed_per_s_after": round(after, 1),
            "send_to_stored": summary(self.to_stored),
            "stored_to_claimed": summary(self.queued),
            "claimed_to_confirmed": summary(self.applying),
        }


def histogram(delta: Samples, name: str) -> dict[str, Any]:
    """Count and mean of a histogram's observations over all its labels."""
    count = sum(v for k, v in delta.items() if k.startswith(f"{name}_count"))
    total = sum(v for k, v in delta.items() if k.startswith(f"{name}_sum"))
    return {
        "count": round(count),
        "mean_ms": round(total / count * 1000, 3) if count else None,
    }


def service_figures(delta: Samples) -> dict[str, Any]:
    processed: Counter[str] = Counter()
    for key, value in delta.items():
        if key.startswith(f"{PROCESSED_METRIC}{{"):
            labels = dict(
                part.split("=", 1) for part in key[len(PROCESSED_METRIC) + 1 : -1].split(",")
            )
            processed[labels.get("status", "?")] += round(value)
    return {
        "ack": histogram(delta, ACK_METRIC),
        "processing": histogram(delta, PROCESSING_METRIC),
        "processed": dict(sorted(processed.items())),
        "retries": round(delta.get("holdfast_webhook_retries_total", 0.0)),
        "dead_letters": round(delta.get("holdfast_webhook_dead_letters_total", 0.0)),
    }
