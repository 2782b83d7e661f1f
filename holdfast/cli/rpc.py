"""What the commands that call the services share: the stubs on one channel,
the call and its error report, the options every group takes, and how an
answer prints by default (the JSON form of the response message)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from holdfast.contracts.availability.v1 import availability_pb2_grpc
from holdfast.contracts.booking.v1 import booking_pb2_grpc, inventory_pb2_grpc
from holdfast.contracts.common.v1 import time_range_pb2
from holdfast.contracts.webhooks.v1 import webhook_admin_pb2_grpc
from holdfast.platform.grpc_errors import details_of


@dataclass(frozen=True)
class Stubs:
    """The clients a command may call, all on one channel (to --target)."""

    booking: Any
    inventory: Any
    availability: Any
    webhooks: Any


Command = Callable[[argparse.Namespace, Stubs, tuple[tuple[str, str], ...]], Awaitable[Message]]
Render = Callable[[Message], None]


def time_range(start: datetime, end: datetime) -> time_range_pb2.TimeRange:
    message = time_range_pb2.TimeRange()
    message.start_time.FromDatetime(start)
    message.end_time.FromDatetime(end)
    return message


def print_json(response: Message) -> None:
    print(json_format.MessageToJson(response, indent=2))


def utc(stamp: Any) -> str:
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


def run_call(args: argparse.Namespace) -> int:
    """What a client command's `run` is: its call, answered and printed."""
    return asyncio.run(_call(args))


class CommandTree:
    """The `holdfast` parser seen by the client groups: the options they
    share (as parent parsers) and how a group and its actions are added."""

    def __init__(self, commands: Any) -> None:
        self.commands = commands
        self.booking = argparse.ArgumentParser(add_help=False)
        self.booking.add_argument(
            "--target",
            default=os.environ.get("HOLDFAST_BOOKING_TARGET", "localhost:50051"),
            help="booking service address (env HOLDFAST_BOOKING_TARGET)",
        )
        self.timing = argparse.ArgumentParser(add_help=False)
        self.timing.add_argument("--timeout", type=float, default=10.0, help="seconds")
        self.tenancy = argparse.ArgumentParser(add_help=False, parents=[self.timing])
        self.tenancy.add_argument("--tenant", default=os.environ.get("HOLDFAST_TENANT", "demo"))
        self.paging = argparse.ArgumentParser(add_help=False)
        self.paging.add_argument("--page-size", type=int, default=0)
        self.paging.add_argument(
            "--page-token",
            "--page",
            dest="page",
            default="",
            metavar="TOKEN",
            help="a next_page_token",
        )

    def group(self, name: str, help_text: str) -> Any:
        return self.commands.add_parser(name, help=help_text).add_subparsers(
            dest="action", required=True
        )

    def action(
        self,
        parent: Any,
        name: str,
        run: Command,
        *extra: argparse.ArgumentParser,
        render: Render = print_json,
        help_text: str | None = None,
        service: argparse.ArgumentParser | None = None,
        scope: argparse.ArgumentParser | None = None,
    ) -> Any:
        """An action of `parent`'s group; by default a tenant's call to the
        booking service."""
        parents = [service or self.booking, scope or self.tenancy, *extra]
        parser = parent.add_parser(name, parents=parents, help=help_text, description=help_text)
        parser.set_defaults(command=run, render=render, run=run_call)
        return parser
