"""`holdfast availability`: a resource's slots as the availability service
sees them, one line each."""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.message import Message

from holdfast.cli.rpc import CommandTree, Stubs, run_call, time_range, utc
from holdfast.contracts.availability.v1 import availability_pb2

# Without --end, `holdfast availability` covers this many days from --start
# (default now): every slot `python -m devtools up` seeds, whose last night starts 14
# days after today.
DEFAULT_AVAILABILITY_DAYS = 15


async def _availability(args: argparse.Namespace, stubs: Stubs, md: Any) -> Message:
    start = args.start or datetime.now(UTC).replace(second=0, microsecond=0)
    end = args.end or start + timedelta(days=DEFAULT_AVAILABILITY_DAYS)
    request = availability_pb2.GetAvailabilityRequest(
        resource_id=args.resource, time_range=time_range(start, end)
    )
    response: Message = await stubs.availability.GetAvailability(request, metadata=md)
    return response


def _instant(text: str) -> datetime:
    """An ISO 8601 time for --start/--end; without an offset it is UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time such as 2030-05-01T09:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _print_slot_lines(response: Message) -> None:
    """One line per slot: when, its numbers, whether it is open, its id."""
    assert isinstance(response, availability_pb2.GetAvailabilityResponse)
    answer = response.availability
    slots = answer.slots
    if not slots:
        start, end = (utc(t) for t in (answer.time_range.start_time, answer.time_range.end_time))
        print(f"no slot starts between {start} and {end}")
        return
    row = "{:<17}  {:<17}  {:>8}  {:>9}  {:>4}  {:>6}  {:<6}  {}"
    print(row.format("start", "end", "capacity", "available", "held", "booked", "state", "slot"))
    for slot in slots:
        state = "open" if slot.open else "closed"
        print(
            row.format(
                utc(slot.start_time),
                utc(slot.end_time),
                slot.capacity,
                slot.available,
                slot.held,
                slot.booked,
                state,
                slot.slot_id,
            )
        )


def add_availability_command(tree: CommandTree) -> None:
    p = tree.commands.add_parser(
        "availability",
        parents=[tree.tenancy],
        help="a resource's slots as the availability service sees them",
        description="Prints one line per slot that starts in [--start, --end): its capacity, what"
        " is available, held (live holds) and booked, and whether it is open.",
    )
    p.add_argument("resource")
    p.add_argument(
        "--target",
        default=os.environ.get("HOLDFAST_AVAILABILITY_TARGET", "localhost:50052"),
        help="availability service address (env HOLDFAST_AVAILABILITY_TARGET)",
    )
    p.add_argument(
        "--start",
        type=_instant,
        help="ISO 8601, e.g. 2030-05-01T09:00Z (UTC if no offset); default: now",
    )
    p.add_argument(
        "--end",
        type=_instant,
        help=f"default: --start + {DEFAULT_AVAILABILITY_DAYS} days (the service allows 62 at most)",
    )
    p.set_defaults(command=_availability, render=_print_slot_lines, run=run_call)
