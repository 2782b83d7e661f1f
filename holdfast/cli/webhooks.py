"""`holdfast webhooks`: the Stripe events the webhook service received,
listed one line each, shown, or replayed."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from holdfast.cli.rpc import CommandTree, Stubs, utc
from holdfast.contracts.webhooks.v1 import webhook_admin_pb2

EVENT_STATUSES = ("pending", "failed", "applied", "ignored", "dead")


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
                    utc(event.receive_time),
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


def add_webhook_commands(tree: CommandTree) -> None:
    # The webhook service's admin calls span tenants: no --tenant.
    admin = argparse.ArgumentParser(add_help=False)
    admin.add_argument(
        "--target",
        default=os.environ.get("HOLDFAST_WEBHOOKS_TARGET", "localhost:50053"),
        help="webhook service address (env HOLDFAST_WEBHOOKS_TARGET)",
    )
    webhooks = tree.group(
        "webhooks", "the Stripe events the webhook service received: list, show, replay"
    )
    p = tree.action(
        webhooks,
        "list",
        _webhooks_list,
        tree.paging,
        render=_print_events,
        service=admin,
        scope=tree.timing,
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
    for name, run, help_text in (
        ("show", _webhooks_show, "one event, with what is kept of its payload (no personal data)"),
        (
            "replay",
            _webhooks_replay,
            "apply a FAILED or DEAD event again, with a fresh retry budget",
        ),
    ):
        p = tree.action(
            webhooks,
            name,
            run,
            render=_print_event,
            service=admin,
            scope=tree.timing,
            help_text=help_text,
        )
        p.add_argument("event", metavar="EVENT_ID", help="a Stripe event id (evt_...)")
