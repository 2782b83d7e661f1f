"""`holdfast resources` and `holdfast slots`: the operator's inventory,
through the booking service."""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta
from typing import Any

from google.protobuf.message import Message

from holdfast.cli.rpc import CommandTree, Stubs, time_range
from holdfast.cli.windows import add_rule_options, window_rules
from holdfast.contracts.booking.v1 import inventory_pb2
from holdfast.contracts.common.v1 import money_pb2


async def _resources_create(args: argparse.Namespace, stubs: Stubs, md: Any) -> Message:
    request = inventory_pb2.CreateResourceRequest(
        name=args.name,
        time_zone=args.time_zone,
        price=money_pb2.Money(currency_code=args.currency, amount_minor=args.price_minor),
        default_capacity=args.capacity,
        request_id=args.request_id,
    )
    if args.windowed:
        request.kind = inventory_pb2.RESOURCE_KIND_WINDOWED
        request.window_rules.CopyFrom(window_rules(args))
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
            time_range=time_range(start + n * every, start + n * every + length),
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


def add_resource_commands(tree: CommandTree) -> None:
    resources = tree.group("resources", "create and list bookable resources")
    p = tree.action(resources, "create", _resources_create)
    p.add_argument("--name", required=True)
    p.add_argument("--time-zone", default="UTC")
    p.add_argument("--price-minor", type=int, required=True, help="e.g. 4500 for 45.00")
    p.add_argument("--currency", default="EUR")
    p.add_argument("--capacity", type=int, default=1, help="default capacity of its slots")
    p.add_argument("--request-id", default="", help="idempotency key")
    p.add_argument(
        "--windowed",
        action="store_true",
        help="units sold for windows (see `holdfast units`, `holdfast hours`) under the"
        " rules below, instead of slots",
    )
    add_rule_options(p, required=False)
    tree.action(resources, "list", _resources_list, tree.paging)


def add_slot_commands(tree: CommandTree) -> None:
    slots = tree.group("slots", "create and list a resource's slots")
    p = tree.action(slots, "create", _slots_create)
    p.add_argument("resource")
    p.add_argument("--start", required=True, help="ISO 8601 with offset, e.g. 2030-05-01T09:00Z")
    p.add_argument("--minutes", type=int, default=60, help="length of each slot")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--every-minutes", type=int, default=0, help="spacing (default: --minutes)")
    p.add_argument("--capacity", type=int, help="default: the resource's default capacity")
    p = tree.action(slots, "list", _slots_list, tree.paging)
    p.add_argument("resource")
