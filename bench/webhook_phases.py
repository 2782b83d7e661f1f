"""The phases of `bench.webhooks`: the warm-up; the measured deliveries,
answered, sent again where they failed, and applied; and the duplicates, the
same events delivered again, several copies at once, after all were applied
(each copy must be answered as a duplicate and no hold confirmed again)."""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from bench.grpc_load import (
    OK,
    Phase,
    keep_busy,
)
from bench.metrics import Metrics, Samples
from bench.processes import CpuWatch
from bench.webhook_delivery import (
    STORED_AGAIN,
    Answer,
    Delivery,
    Receiver,
    deliver,
    examples,
    redeliver,
)
from bench.webhook_rounds import Side, alternate
from bench.webhook_timings import Ledger, wait_processed
from bench.webhooks_options import Options

# After the duplicates, before looking: the processor looks for due events
# at least every second (by default), so it would have done something wrong.
DUPLICATE_SETTLE_SECONDS = 2.0


async def duplicate_phase(
    receiver: Receiver,
    conn: asyncpg.Connection,
    tenant: str,
    all_deliveries: Sequence[Delivery],
    sample: Sequence[Delivery],
    options: Options,
    before: Ledger,
) -> tuple[Phase, Counter[str], list[str], dict[str, str]]:
    """Each sampled event `copies` times, its copies side by side in the queue
    (so in flight together); then nothing may have changed in Postgres."""
    copies = options.duplicate_copies
    answers: list[Answer] = []

    async def call(i: int) -> str:
        answer = await receiver.post(sample[i // copies].body)
        answers.append(answer)
        if answer.outcome == OK and not answer.duplicate:
            return STORED_AGAIN
        return answer.outcome

    phase = await keep_busy("duplicates", call, options.concurrency, len(sample) * copies, None)
    await asyncio.sleep(DUPLICATE_SETTLE_SECONDS)
    after = await Ledger.read(conn, tenant, [d.event_id for d in all_deliveries])
    # Only events already applied (or given up) before the copies were sent:
    # if the inbox never drained, the rest are still being applied.
    final = ("APPLIED", "IGNORED", "DEAD")
    settled = [
        d
        for d in all_deliveries
        if (row := before.events.get(d.event_id)) is not None and row["status"] in final
    ]

    def rows(ledger: Ledger) -> int:
        return sum(
            c["rows"] for d in settled if (c := ledger.confirmations.get(d.hold_id)) is not None
        )

    problems = []
    if rows(after) != rows(before):
        problems.append(
            f"the settled events' holds had {rows(before)} confirmations, now {rows(after)}"
        )
    changed = [
        d.event_id
        for d in settled
        if (row := after.events[d.event_id])["status"] != before.events[d.event_id]["status"]
        or row["attempts"] != before.events[d.event_id]["attempts"]
    ]
    if changed:
        problems.append(f"{len(changed)} events were applied again, e.g. {changed[0]}")
    not_duplicates = len(phase.latencies) - phase.ok
    if not_duplicates:
        problems.append(f"{not_duplicates} copies were not answered 200 as duplicates")
    return phase, Counter(phase.outcomes), problems, examples(answers)


def sample_of(deliveries: Sequence[Delivery], count: int) -> list[Delivery]:
    """`count` deliveries spread evenly over the run."""
    count = min(count, len(deliveries))
    return [deliveries[i * len(deliveries) // count] for i in range(count)] if count else []


@dataclass
class Delivered:
    """The measured deliveries: answered, sent again where they failed, applied."""

    ack: Phase
    # The receiver's and the ceiling's rounds, with the CPU each used.
    service: Side
    ceiling: Side | None
    failures: dict[str, str]
    redelivered: int
    drained: bool
    drain_seconds: float
    # The webhook service's counters before, once acknowledged, once drained.
    samples: tuple[Samples, Samples, Samples]


async def warm_up(
    options: Options, receiver: Receiver, conn: asyncpg.Connection, warmup: Sequence[Delivery]
) -> bool:
    """False when the receiver accepted none of the warm-up events."""
    phase = await deliver("warm-up", receiver, warmup, options.concurrency)
    if not phase.ok:
        failures = examples([d.answers[-1] for d in warmup])
        print(
            f"the webhook receiver at {options.webhooks_url} accepted no event"
            " (a 400 about the signature means --secret is not one of its secrets):",
            file=sys.stderr,
        )
        for outcome, detail in failures.items():
            print(f"  {outcome}: {detail}", file=sys.stderr)
        return False
    await redeliver(receiver, warmup, options.concurrency)
    if not await wait_processed(
        conn, [d.event_id for d in warmup], options.drain_timeout, options.poll_ms / 1000
    ):
        print("warm-up: not every event was applied in time; going on", file=sys.stderr)
    return True


async def deliver_measured(
    options: Options,
    receiver: Receiver,
    conn: asyncpg.Connection,
    measured: Sequence[Delivery],
    metrics: Metrics,
    cpu: CpuWatch,
    ceiling: Receiver | None = None,
    ceiling_pid: int | None = None,
) -> Delivered | None:
    """None when the receiver accepted none of them."""
    metrics_before = await metrics.read()
    cpu.mark("start")
    service_pids = options.pids.get("webhooks") or [p for ps in options.pids.values() for p in ps]
    service, top = await alternate(
        receiver,
        ceiling,
        measured,
        options.concurrency,
        options.rounds,
        (service_pids, [ceiling_pid] if ceiling_pid else []),
    )
    ack = service.phase
    cpu.mark("acked")
    metrics_acked = await metrics.read()
    acked_at = time.perf_counter()
    failures = examples([d.answers[0] for d in measured])
    redelivered = await redeliver(receiver, measured, options.concurrency)
    if not any(d.delivered for d in measured):
        print(
            f"the webhook receiver at {options.webhooks_url} accepted no event:",
            file=sys.stderr,
        )
        for outcome, detail in failures.items():
            print(f"  {outcome}: {detail}", file=sys.stderr)
        return None
    drained = await wait_processed(
        conn, [d.event_id for d in measured], options.drain_timeout, options.poll_ms / 1000
    )
    drain_seconds = time.perf_counter() - acked_at
    cpu.mark("drained")
    metrics_drained = await metrics.read()
    return Delivered(
        ack,
        service,
        top,
        failures,
        redelivered,
        drained,
        drain_seconds,
        (metrics_before, metrics_acked, metrics_drained),
    )
