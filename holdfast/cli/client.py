"""`holdfast` subcommands that drive the services over gRPC, and the local fake Stripe.

Enough to walk a hold through its life from a terminal, payment included;
booking answers are printed as the JSON form of the response message,
availability and the webhook service's event list as one line per item.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
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

from holdfast.contracts.availability.v1 import availability_pb2, availability_pb2_grpc
from holdfast.contracts.booking.v1 import (
    booking_pb2,
    booking_pb2_grpc,
    inventory_pb2,
    inventory_pb2_grpc,
)
from holdfast.contracts.common.v1 import money_pb2, time_range_pb2
from holdfast.contracts.webhooks.v1 import webhook_admin_pb2, webhook_admin_pb2_grpc
from holdfast.platform.grpc_errors import details_of

# Without --end, `holdfast availability` covers this many days from --start
# (default now): every slot `python -m devtools up` seeds, whose last night starts 14
# days after today.
DEFAULT_AVAILABILITY_DAYS = 15
HOLD_STATUSES = ("held", "confirmed", "cancelled", "refunded", "released", "expired")
EVENT_STATUSES = ("pending", "failed", "applied", "ignored", "dead")


@dataclass(frozen=True)
class Stubs:
    """The clients a command may call, all on one channel (to --target)."""

    booking: Any
    inventory: Any
    availability: Any
    webhooks: Any


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
            capacity=args.capacity,  # None (not given) leaves it unset: the default
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


async def _holds_checkout(args: argparse.Namespace, stubs: Stubs, md: Any) -> Message:
    request = booking_pb2.StartCheckoutRequest(
        hold_id=args.hold, success_url=args.success_url, cancel_url=args.cancel_url
    )
    response: Message = await stubs.booking.StartCheckout(request, metadata=md)
    return response


async def _bookings_get(args: argparse.Namespace, stubs: Stubs, md: Any) -> Message:
    request = booking_pb2.GetBookingRequest(booking_id=args.booking)
    response: Message = await stubs.booking.GetBooking(request, metadata=md)
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
    request = booking_pb2.CancelBookingRequest(
        booking_id=args.booking,
        reason=args.reason,
        refund=booking_pb2.REFUND_MODE_NONE
        if args.refund == "none"
        else booking_pb2.REFUND_MODE_FULL,
    )
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


async def _webhooks_list(args: argparse.Namespace, stubs: Stubs, md: Any) -> Message:
    request = webhook_admin_pb2.ListEventsRequest(
        page_size=args.page_size,
        page_token=args.page,
        statuses=[
            webhook_admin_pb2.EventStatus.Value(f"EVENT_STATUS_{s.upper()}") for s in args.status
        ],
        type=args.type,
    )
    response: Message = await stubs.webhooks.ListEvents(request, metadata=md)
    return response


async def _webhooks_show(args: argparse.Namespace, stubs: Stubs, md: Any) -> Message:
    request = webhook_admin_pb2.GetEventRequest(event_id=args.event)
    response: Message = await stubs.webhooks.GetEvent(request, metadata=md)
    return response


async def _webhooks_replay(args: argparse.Namespace, stubs: Stubs, md: Any) -> Message:
    request = webhook_admin_pb2.ReplayEventRequest(event_id=args.event)
    response: Message = await stubs.webhooks.ReplayEvent(request, metadata=md)
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


def _print_checkout(response: Message) -> None:
    """The session to pay: its id, the page to pay on, which attempt, until when."""
    assert isinstance(response, booking_pb2.StartCheckoutResponse)
    checkout = response.checkout
    status = booking_pb2.CheckoutStatus.Name(checkout.status).removeprefix("CHECKOUT_STATUS_")
    print(f"session   {checkout.session_id}")
    print(f"url       {checkout.url}")
    print(f"attempt   {checkout.attempt}  ({status.lower()})")
    print(f"expires   {_utc(checkout.expire_time)}")
    print(f"amount    {checkout.amount.amount_minor} {checkout.amount.currency_code} (minor units)")


def _print_events(response: Message) -> None:
    """One line per Stripe event, newest first: when, what, how it went."""
    assert isinstance(response, webhook_admin_pb2.ListEventsResponse)
    if not response.events:
        print("no events")
    else:
        row = "{:<20}  {:<7}  {:>8}  {:<40}  {:<30}  {}"
        print(row.format("received", "status", "attempts", "type", "event", "outcome"))
        for event in response.events:
            status = webhook_admin_pb2.EventStatus.Name(event.status)
            outcome = event.outcome or ""
            if event.last_error:
                outcome = f"{outcome} ({event.last_error})" if outcome else event.last_error
            print(
                row.format(
                    _utc(event.receive_time),
                    status.removeprefix("EVENT_STATUS_"),
                    event.attempts,
                    event.type,
                    event.event_id,
                    outcome,
                )
            )
    if response.next_page_token:
        print(f"more: --page-token {response.next_page_token}")


def _print_event(response: Message) -> None:
    """The event as JSON, its payload (Stripe's JSON, held as a string) inline."""
    event = getattr(response, "event", None)
    assert isinstance(event, webhook_admin_pb2.StripeEvent)
    shown: dict[str, Any] = json_format.MessageToDict(event)
    if event.payload:
        with contextlib.suppress(ValueError):
            shown["payload"] = json.loads(event.payload)
    print(json.dumps(shown, indent=2))


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
            webhooks=webhook_admin_pb2_grpc.WebhookAdminServiceStub(channel),
        )
        # The webhook service's admin calls span tenants, so they name none.
        tenant = getattr(args, "tenant", None)
        metadata = ((("x-tenant-id", tenant),) if tenant else ()) + (("x-actor", "cli"),)
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
    """Adds the resources/slots/holds/bookings/availability/pay/webhooks subcommands
    to the `holdfast` parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--target",
        default=os.environ.get("HOLDFAST_BOOKING_TARGET", "localhost:50051"),
        help="booking service address (env HOLDFAST_BOOKING_TARGET)",
    )
    timing = argparse.ArgumentParser(add_help=False)
    timing.add_argument("--timeout", type=float, default=10.0, help="seconds")
    tenancy = argparse.ArgumentParser(add_help=False, parents=[timing])
    tenancy.add_argument("--tenant", default=os.environ.get("HOLDFAST_TENANT", "demo"))
    paging = argparse.ArgumentParser(add_help=False)
    paging.add_argument("--page-size", type=int, default=0)
    paging.add_argument(
        "--page-token", "--page", dest="page", default="", metavar="TOKEN", help="a next_page_token"
    )

    def group(name: str, help_text: str) -> Any:
        return commands.add_parser(name, help=help_text).add_subparsers(
            dest="action", required=True
        )

    def action(
        parent: Any,
        name: str,
        run: Command,
        *extra: argparse.ArgumentParser,
        render: Callable[[Message], None] = _print_json,
        help_text: str | None = None,
        service: argparse.ArgumentParser = common,
        scope: argparse.ArgumentParser = tenancy,
    ) -> Any:
        parser = parent.add_parser(
            name, parents=[service, scope, *extra], help=help_text, description=help_text
        )
        parser.set_defaults(command=run, render=render, run=lambda args: asyncio.run(_call(args)))
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
    p.add_argument("--capacity", type=int, help="default: the resource's default capacity")
    p = action(slots, "list", _slots_list, paging)
    p.add_argument("resource")

    holds = group("holds", "take, read, release, pay for and confirm holds")
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
    p = action(
        holds,
        "checkout",
        _holds_checkout,
        render=_print_checkout,
        help_text="start paying for a held hold: a Stripe Checkout session (StartCheckout);"
        " while its latest session is open, that session again",
    )
    p.add_argument("hold")
    p.add_argument(
        "--success-url",
        default="",
        help="where Stripe sends the customer after paying ({HOLD_ID} is replaced);"
        " default: the booking service's HOLDFAST_CHECKOUT_SUCCESS_URL",
    )
    p.add_argument(
        "--cancel-url",
        default="",
        help="where Stripe sends a customer who gives up; default: HOLDFAST_CHECKOUT_CANCEL_URL",
    )
    p = action(
        holds,
        "confirm",
        _holds_confirm,
        help_text="HELD -> CONFIRMED by hand, naming the payment"
        " (a paid checkout does this by itself)",
    )
    p.add_argument("hold")
    p.add_argument("--payment-ref", required=True)

    bookings = group("bookings", "read, list and cancel bookings")
    p = action(bookings, "get", _bookings_get)
    p.add_argument("booking", help="its id: the id of the hold it was")
    p = action(bookings, "list", _bookings_list, paging)
    p.add_argument(
        "--status",
        action="append",
        default=[],
        type=str.lower,
        choices=HOLD_STATUSES,
        help="only these; repeatable",
    )
    p.add_argument("--resource", default="")
    p = action(
        bookings,
        "cancel",
        _bookings_cancel,
        help_text="cancel a booking: its places come back and its payment is refunded in full"
        " at Stripe, unless --refund none",
    )
    p.add_argument("booking")
    p.add_argument("--reason", default="")
    p.add_argument(
        "--refund",
        choices=("full", "none"),
        default="full",
        help="full: refund the payment in full (default); none: keep it, recorded as your choice",
    )

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

    admin = argparse.ArgumentParser(add_help=False)
    admin.add_argument(
        "--target",
        default=os.environ.get("HOLDFAST_WEBHOOKS_TARGET", "localhost:50053"),
        help="webhook service address (env HOLDFAST_WEBHOOKS_TARGET)",
    )
    webhooks = group(
        "webhooks", "the Stripe events the webhook service received: list, show, replay"
    )
    p = action(
        webhooks,
        "list",
        _webhooks_list,
        paging,
        render=_print_events,
        service=admin,
        scope=timing,
        help_text="Stripe events, newest first, one line each",
    )
    p.add_argument(
        "--status",
        action="append",
        default=[],
        type=str.lower,
        choices=EVENT_STATUSES,
        help="only these; repeatable",
    )
    p.add_argument("--type", default="", help="only this type, e.g. checkout.session.completed")
    p = action(
        webhooks,
        "show",
        _webhooks_show,
        render=_print_event,
        service=admin,
        scope=timing,
        help_text="one event, with what is kept of its payload (no personal data)",
    )
    p.add_argument("event", metavar="EVENT_ID", help="a Stripe event id (evt_...)")
    p = action(
        webhooks,
        "replay",
        _webhooks_replay,
        render=_print_event,
        service=admin,
        scope=timing,
        help_text="apply a FAILED or DEAD event again, with a fresh retry budget",
    )
    p.add_argument("event", metavar="EVENT_ID", help="a Stripe event id (evt_...)")
