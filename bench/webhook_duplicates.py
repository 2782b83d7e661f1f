"""The duplicates phase of `bench.webhooks`: the same events delivered again,
several copies at once, after all were applied; each copy must be answered
as a duplicate and no hold confirmed again."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

import asyncpg

from bench.grpc_load import (
    OK,
    Phase,
    keep_busy,
)
from bench.webhook_delivery import (
    STORED_AGAIN,
    Answer,
    Delivery,
    Receiver,
    examples,
)
from bench.webhook_timings import (
    Ledger,
)

if TYPE_CHECKING:
    from bench.webhooks import Options

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
