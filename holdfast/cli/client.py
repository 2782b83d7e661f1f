"""`holdfast` subcommands that drive the services over gRPC, and the local fake Stripe.

Enough to walk a hold through its life from a terminal, payment included;
booking answers are printed as the JSON form of the response message,
availability and the webhook service's event list as one line per item.
One module a command group (`holdfast.cli.holds` for `holdfast holds` ...);
what they share is `holdfast.cli.rpc`.
"""

from __future__ import annotations

from typing import Any

from holdfast.cli.availability import add_availability_command
from holdfast.cli.bookings import add_booking_commands
from holdfast.cli.holds import add_hold_commands
from holdfast.cli.inventory import add_resource_commands, add_slot_commands
from holdfast.cli.rpc import CommandTree
from holdfast.cli.webhooks import add_webhook_commands
from holdfast.cli.windows import add_window_commands


def add_client_commands(commands: Any) -> None:
    """Adds the resources/slots/setup/units/hours/holds/bookings/availability/pay/webhooks
    subcommands to the `holdfast` parser."""
    tree = CommandTree(commands)
    add_resource_commands(tree)
    add_slot_commands(tree)
    add_window_commands(tree)
    add_hold_commands(tree)
    add_booking_commands(tree)
    add_availability_command(tree)
    add_webhook_commands(tree)
