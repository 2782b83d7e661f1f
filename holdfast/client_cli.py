"""`holdfast` subcommands that drive the booking and availability services over gRPC.

Enough to walk a hold through its life from a terminal; every booking answer
is printed as the JSON form of the response message, availability as one line
per slot.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message

from holdfast.availability.v1 import availability_pb2, availability_pb2_grpc
from holdfast.booking.v1 import booking_pb2, booking_pb2_grpc, inventory_pb2, inventory_pb2_grpc
from holdfast.common.v1 import money_pb2, time_range_pb2
from holdfast.platform.grpc_errors import details_of

# Without --end, `holdfast availability` covers this many days from --start
# (default now): every slot `holdfast up` seeds, whose last night starts 14
# days after today.
DEFAULT_AVAILABILITY_DAYS = 15


@dataclass(frozen=True)
class Stubs:
    """The clients a command may call, all on one channel (to --target)."""

    booking: Any
    inventory: Any
    availability: Any


Command = Callable[[argparse.Namespace, Stubs, tuple[tuple[str, str], ...]], Awaitable[Message]]


def _range(start: datetime, end: datetime) -> time_range_pb2.TimeRange:
    message = time_range_pb2.TimeRange()
    message.start_time.FromDatetime(start)
    message.end_time.FromDatetime(end)
    return message


async def _resources_create(args: argparse.Namespace, stubs: Stubs, md: Any) -> Message:
    request = inventory_pb2.CreateResourceRequest(
        name=args.name,
        time_zone=args.time_zone,
        price=money_pb2.Money(currency_code=args.currency, amount_minor=args.price_minor),
        default_capacity=args.capacity,
    )
    response: Message = await stubs.inventory.CreateResource(request, metadata=md)
    return response


async def _resources_list(args: argparse.Namespace, stubs: Stubs, md: Any) -> Message:
    request = inventory_pb2.ListResourcesRequest(page_size=args.page_size, page_token=args.page)
    response: Message = await stubs.inventory.ListResources(request, metadata=md)
    return response


async def _slots_create(args: argparse.Namespace, stubs: Stubs, md: Any) -> Message:
    start = datetime.fromisoformat(args.start)
    length = timedelta(minutes=args.minutes)
    every = timedelta(minutes=args.every_minutes or args.minutes)
    specs = [
        inventory_pb2.SlotSpec(
            time_range=_range(start + n * every, start + n * every + length),
            capacity=args.capacity,
        )
        for n in range(args.count)
    ]
    request = inventory_pb2.CreateSlotsRequest(resource_id=args.resource, slots=specs)
    response: Message = await stubs.inventory.CreateSlots(request, metadata=md)
    return response


async def _slots_list(args: argparse.Namespace, stubs: Stubs, md: Any) -> Message:
    request = inventory_pb2.ListSlotsRequest(
        resource_id=args.resource, page_size=args.page_size, page_token=args.page
    )
    response: Message = await stubs.inventory.ListSlots(request, metadata=md)
    return response


async def _holds_create(args: argparse.Namespace, stubs: Stubs, md: Any) -> Message:
    request = booking_pb2.CreateHoldRequest(
        resource_id=args.resource,
        slot_ids=args.slot,
        quantity=args.quantity,
        customer_ref=args.customer_ref,
        request_id=args.request_id,
    )
    if args.ttl is not None:
        ttl = Duration()
        ttl.FromSeconds(args.ttl)
        request.ttl.CopyFrom(ttl)
    response: Message = await stubs.booking.CreateHold(request, metadata=md)
    return response


async def _holds_get(args: argparse.Namespace, stubs: Stubs, md: Any) -> Message:
    response: Message = await stubs.booking.GetHold(
        booking_pb2.GetHoldRequest(hold_id=args.hold), metadata=md
    )
    return response


async def _holds_release(args: argparse.Namespace, stubs: Stubs, md: Any) -> Message:
    request = booking_pb2.ReleaseHoldRequest(hold_id=args.hold, reason=args.reason)
    response: Message = await stubs.booking.ReleaseHold(request, metadata=md)
    return response


async def _holds_confirm(args: argparse.Namespace, stubs: Stubs, md: Any) -> Message:
    request = booking_pb2.ConfirmHoldRequest(hold_id=args.hold, payment_ref=args.payment_ref)
    response: Message = await stubs.booking.ConfirmHold(request, metadata=md)
    return response


async def _bookings_list(args: argparse.Namespace, stubs: Stubs, md: Any) -> Message:
    request = booking_pb2.ListBookingsRequest(
        page_size=args.page_size,
        page_token=args.page,
        statuses=[booking_pb2.HoldStatus.Value(f"HOLD_STATUS_{s.upper()}") for s in args.status],
        resource_id=args.resource,
    )
    response: Message = await stubs.booking.ListBookings(request, metadata=md)
    return response


async def _bookings_cancel(args: argparse.Namespace, stubs: Stubs, md: Any) -> Message:
    request = booking_pb2.CancelBookingRequest(booking_id=args.booking, reason=args.reason)
    response: Message = await stubs.booking.CancelBooking(request, metadata=md)
    return response


async def _availability(args: argparse.Namespace, stubs: Stubs, md: Any) -> Message:
    start = args.start or datetime.now(UTC).replace(second=0, microsecond=0)
    end = args.end or start + timedelta(days=DEFAULT_AVAILABILITY_DAYS)
    request = availability_pb2.GetAvailabilityRequest(
        resource_id=args.resource, time_range=_range(start, end)
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


def _print_json(response: Message) -> None:
    print(json_format.MessageToJson(response, indent=2))


def _print_slot_lines(response: Message) -> None:
    """One line per slot: when, its numbers, whether it is open, its id."""
    assert isinstance(response, availability_pb2.GetAvailabilityResponse)
    answer = response.availability
    slots = answer.slots
    if not slots:
        start, end = (_utc(t) for t in (answer.time_range.start_time, answer.time_range.end_time))
        print(f"no slot starts between {start} and {end}")
        return
    row = "{:<17}  {:<17}  {:>8}  {:>9}  {:>4}  {:>6}  {:<6}  {}"
    print(row.format("start", "end", "capacity", "available", "held", "booked", "state", "slot"))
    for slot in slots:
        state = "open" if slot.open else "closed"
        print(
            row.format(
                _utc(slot.start_time),
                _utc(slot.end_time),
                slot.capacity,
                slot.available,
                slot.held,
                slot.booked,
                state,
                slot.slot_id,
            )
        )


def _utc(stamp: Any) -> str:
    moment: datetime = stamp.ToDatetime(UTC)
    return moment.strftime("%Y-%m-%dT%H:%MZ" if moment.second == 0 else "%Y-%m-%dT%H:%M:%SZ")


async def _call(args: argparse.Namespace) -> int:
    async with grpc.aio.insecure_channel(args.target) as channel:
        stubs = Stubs(
            booking=booking_pb2_grpc.BookingServiceStub(channel),
            inventory=inventory_pb2_grpc.InventoryServiceStub(channel),
            availability=availability_pb2_grpc.AvailabilityServiceStub(channel),
        )
        metadata = (("x-tenant-id", args.tenant), ("x-actor", "cli"))
        try:
            response = await asyncio.wait_for(args.command(args, stubs, metadata), args.timeout)
        except grpc.aio.AioRpcError as error:
            details = details_of(error)
            print(
                f"error: {details.code.name} {details.reason}: {details.message}", file=sys.stderr
            )
            for field, description in details.field_violations:
                print(f"  {field}: {description}", file=sys.stderr)
            return 1
    args.render(response)
    return 0


def add_client_commands(commands: Any) -> None:
    """Adds the resources/slots/holds/bookings/availability subcommands to the `holdfast` parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--target",
        default=os.environ.get("HOLDFAST_BOOKING_TARGET", "localhost:50051"),
        help="booking service address (env HOLDFAST_BOOKING_TARGET)",
    )
    tenancy = argparse.ArgumentParser(add_help=False)
    tenancy.add_argument("--tenant", default=os.environ.get("HOLDFAST_TENANT", "demo"))
    tenancy.add_argument("--timeout", type=float, default=10.0, help="seconds")
    paging = argparse.ArgumentParser(add_help=False)
    paging.add_argument("--page-size", type=int, default=0)
    paging.add_argument("--page", default="", help="a next_page_token")

    def group(name: str, help_text: str) -> Any:
        return commands.add_parser(name, help=help_text).add_subparsers(
            dest="action", required=True
        )

    def action(parent: Any, name: str, run: Command, *extra: argparse.ArgumentParser) -> Any:
        parser = parent.add_parser(name, parents=[common, tenancy, *extra])
        parser.set_defaults(
            command=run, render=_print_json, run=lambda args: asyncio.run(_call(args))
        )
        return parser

    resources = group("resources", "create and list bookable resources")
    p = action(resources, "create", _resources_create)
    p.add_argument("--name", required=True)
    p.add_argument("--time-zone", default="UTC")
    p.add_argument("--price-minor", type=int, required=True, help="e.g. 4500 for 45.00")
    p.add_argument("--currency", default="EUR")
    p.add_argument("--capacity", type=int, default=1, help="default capacity of its slots")
    action(resources, "list", _resources_list, paging)

    slots = group("slots", "create and list a resource's slots")
    p = action(slots, "create", _slots_create)
    p.add_argument("resource")
    p.add_argument("--start", required=True, help="ISO 8601 with offset, e.g. 2030-05-01T09:00Z")
    p.add_argument("--minutes", type=int, default=60, help="length of each slot")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--every-minutes", type=int, default=0, help="spacing (default: --minutes)")
    p.add_argument("--capacity", type=int, default=0, help="0: the resource's default")
    p = action(slots, "list", _slots_list, paging)
    p.add_argument("resource")

    holds = group("holds", "take, read, release and confirm holds")
    p = action(holds, "create", _holds_create)
    p.add_argument("--resource", required=True)
    p.add_argument("--slot", action="append", required=True, help="repeat for several slots")
    p.add_argument("--quantity", type=int, default=1)
    p.add_argument("--customer-ref", default="")
    p.add_argument("--ttl", type=int, help="seconds")
    p.add_argument("--request-id", default="", help="idempotency key")
    p = action(holds, "get", _holds_get)
    p.add_argument("hold")
    p = action(holds, "release", _holds_release)
    p.add_argument("hold")
    p.add_argument("--reason", default="")
    p = action(holds, "confirm", _holds_confirm)
    p.add_argument("hold")
    p.add_argument("--payment-ref", required=True)

    bookings = group("bookings", "list and cancel bookings")
    p = action(bookings, "list", _bookings_list, paging)
    p.add_argument("--status", action="append", default=[], help="e.g. confirmed; repeatable")
    p.add_argument("--resource", default="")
    p = action(bookings, "cancel", _bookings_cancel)
    p.add_argument("booking")
    p.add_argument("--reason", default="")

    p = commands.add_parser(
        "availability",
        parents=[tenancy],
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
    p.set_defaults(
        command=_availability, render=_print_slot_lines, run=lambda args: asyncio.run(_call(args))
    )
