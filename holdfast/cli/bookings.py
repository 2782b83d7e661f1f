"""`holdfast bookings`: read, list and cancel bookings."""

from __future__ import annotations

import argparse
from typing import Any

from google.protobuf.message import Message

from holdfast.cli.rpc import CommandTree, Stubs
from holdfast.contracts.booking.v1 import booking_pb2

HOLD_STATUSES = ("held", "confirmed", "cancelled", "refunded", "released", "expired")


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


def add_booking_commands(tree: CommandTree) -> None:
    bookings = tree.group("bookings", "read, list and cancel bookings")
    p = tree.action(bookings, "get", _bookings_get)
    p.add_argument("booking", help="its id: the id of the hold it was")
    p = tree.action(bookings, "list", _bookings_list, tree.paging)
    p.add_argument(
        "--status",
        action="append",
        default=[],
        type=str.lower,
        choices=HOLD_STATUSES,
        help="only these; repeatable",
    )
    p.add_argument("--resource", default="")
    p = tree.action(
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
