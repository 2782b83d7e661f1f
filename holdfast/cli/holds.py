"""`holdfast holds`: take, read, release, pay for and confirm holds."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message

from holdfast.cli.rpc import CommandTree, Stubs, time_range, utc
from holdfast.contracts.booking.v1 import booking_pb2


async def _holds_create(args: argparse.Namespace, stubs: Stubs, md: Any) -> Message:
    request = booking_pb2.CreateHoldRequest(
        resource_id=args.resource,
        slot_ids=args.slot,
        customer_ref=args.customer_ref,
        request_id=args.request_id,
        party_size=args.party,
        unit_id=args.unit,
    )
    if args.window is not None:
        request.window.CopyFrom(time_range(*args.window))
    else:  # a window's hold takes a party (or a unit), not a quantity
        request.quantity = args.quantity
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


def _print_checkout(response: Message) -> None:
    """The session to pay: its id, the page to pay on, which attempt, until when."""
    assert isinstance(response, booking_pb2.StartCheckoutResponse)
    checkout = response.checkout
    status = booking_pb2.CheckoutStatus.Name(checkout.status).removeprefix("CHECKOUT_STATUS_")
    print(f"session   {checkout.session_id}")
    print(f"url       {checkout.url}")
    print(f"attempt   {checkout.attempt}  ({status.lower()})")
    print(f"expires   {utc(checkout.expire_time)}")
    print(f"amount    {checkout.amount.amount_minor} {checkout.amount.currency_code} (minor units)")


def window(text: str) -> tuple[datetime, datetime]:
    """ "START/END", each ISO 8601 with its offset."""
    start, slash, end = text.partition("/")
    try:
        found = datetime.fromisoformat(start), datetime.fromisoformat(end)
    except ValueError:
        found = None
    if not slash or found is None or any(t.tzinfo is None for t in found):
        raise argparse.ArgumentTypeError(f"{text!r} is not START/END, each with its offset")
    return found


def add_hold_commands(tree: CommandTree) -> None:
    holds = tree.group("holds", "take, read, release, pay for and confirm holds")
    p = tree.action(holds, "create", _holds_create)
    p.add_argument("--resource", required=True)
    p.add_argument("--slot", action="append", default=[], help="repeat for several slots")
    p.add_argument("--quantity", type=int, default=1, help="places on each slot")
    p.add_argument(
        "--window",
        type=window,
        metavar="START/END",
        help="a windowed resource's window, ISO 8601 with offsets,"
        " e.g. 2030-05-03T19:30+02:00/2030-05-03T21:30+02:00",
    )
    p.add_argument("--party", type=int, default=0, help="party size, with --window")
    p.add_argument("--unit", default="", help="a unit id, with --window (default: the best fit)")
    p.add_argument("--customer-ref", default="")
    p.add_argument("--ttl", type=int, help="seconds")
    p.add_argument("--request-id", default="", help="idempotency key")
    p = tree.action(holds, "get", _holds_get)
    p.add_argument("hold")
    p = tree.action(holds, "release", _holds_release)
    p.add_argument("hold")
    p.add_argument("--reason", default="")
    p = tree.action(
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
    p = tree.action(
        holds,
        "confirm",
        _holds_confirm,
        help_text="HELD -> CONFIRMED by hand, naming the payment"
        " (a paid checkout does this by itself)",
    )
    p.add_argument("hold")
    p.add_argument("--payment-ref", required=True)
