"""What `python -m devtools up` tells once the stack is up: the env file
(the stack's addresses and the demo API key as shell exports) and the
banner that walks through the HTTP API and the CLI."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TextIO

from devtools.demo import DEMO_TENANT, write_private
from devtools.engines import Engines
from devtools.fakestripe.config import DEFAULT_API_KEY as FAKE_STRIPE_API_KEY
from devtools.fakestripe.config import DEFAULT_PORT as DEFAULT_FAKE_STRIPE_PORT
from devtools.fakestripe.config import DEFAULT_WEBHOOK_SECRET as FAKE_STRIPE_WEBHOOK_SECRET
from devtools.plan import (
    STRIPE_KEY_ENV,
    WEBHOOK_PATH,
    Service,
    Stack,
    default_of,
)

# In the state dir while `python -m devtools up` runs: the stack's URLs (and the demo
# tenant's API key) as shell exports.
ENV_FILE = "up.env"
# The walkthrough's availability range covers every seeded slot: they start
# from tomorrow (demo time zone), the last night 13 days after that.
WALKTHROUGH_DAYS = 16


def write_env_file(state_dir: Path, found: Engines, stack: Stack, demo_key: str) -> None:
    """Writes where the running stack is, for people and tools such as `make
    bench` to source; readable by the owner only, as it holds an API key."""
    values = {
        "HOLDFAST_DATABASE_URL": found.database_url,
        "HOLDFAST_REDIS_URL": found.redis_url,
        "HOLDFAST_BOOKING_TARGET": stack.booking.target,
        "HOLDFAST_AVAILABILITY_TARGET": stack.availability.target,
        "HOLDFAST_WEBHOOKS_TARGET": stack.webhooks.target,
        "HOLDFAST_WEBHOOKS_URL": stack.webhook_url,
        "HOLDFAST_GATEWAY_URL": stack.gateway.url,
        "HOLDFAST_DEMO_API_KEY": demo_key,
    }
    if stack.fake_stripe is not None:
        values["HOLDFAST_FAKE_STRIPE_URL"] = stack.fake_stripe.url
    for service in (stack.booking, stack.availability, stack.webhooks):
        if service.metrics_port >= 0:
            values[f"HOLDFAST_{service.name.upper()}_METRICS_URL"] = (
                f"http://127.0.0.1:{service.metrics_port}/metrics"
            )
    lines = [f"export {name}={shlex.quote(value)}\n" for name, value in values.items()]
    write_private(state_dir / ENV_FILE, "".join(lines))


def print_banner(
    found: Engines,
    state_dir: Path,
    stack: Stack,
    seeded: bool,
    example: tuple[str, str],
    new_key: bool,
    out: TextIO = sys.stdout,
    today: date | None = None,
) -> None:
    resource_id, slot_id = example
    booking, availability, webhooks, gateway, fake = (
        stack.booking,
        stack.availability,
        stack.webhooks,
        stack.gateway,
        stack.fake_stripe,
    )
    cli = _cli_command()
    # The CLI's defaults are the default ports.
    target = _flag(
        "--target", f"localhost:{booking.port}", booking.port, default_of("booking", "booking_port")
    )
    a_target = _flag(
        "--target",
        f"localhost:{availability.port}",
        availability.port,
        default_of("availability", "availability_port"),
    )
    w_target = _flag(
        "--target",
        f"localhost:{webhooks.port}",
        webhooks.port,
        default_of("webhooks", "webhooks_port"),
    )
    webhook_url = stack.webhook_url.replace("127.0.0.1", "localhost")
    gateway_url = f"http://localhost:{gateway.port}"
    pg_origin, redis_origin = found.origins
    demo = "seeded just now" if seeded else "already had inventory, left as it was"
    key_origin = "made just now" if new_key else "the one from the last run"
    env_file = _shown_path(state_dir / ENV_FILE)
    first_day = today or datetime.now(UTC).date()
    window = (
        f"start={first_day.isoformat()}T00:00:00Z"
        f"&end={(first_day + timedelta(days=WALKTHROUGH_DAYS)).isoformat()}T00:00:00Z"
    )
    if fake is not None:
        fake_flag = _flag("--fake-stripe", fake.url, fake.port, DEFAULT_FAKE_STRIPE_PORT)
        stripe = (
            f"fake Stripe    http://localhost:{fake.port}  (API key {FAKE_STRIPE_API_KEY},"
            f" events signed with {FAKE_STRIPE_WEBHOOK_SECRET})\n"
            f"               sends its events to {webhook_url}\n"
            f"               log {state_dir / fake.log_name}"
        )
        pay = (
            f"  {cli} pay SESSION_ID{fake_flag}\n"
            "      (the customer pays on the fake Stripe, which sends checkout.session.completed"
            " to the webhook service)"
        )
        http_pay = (
            "  curl -s -X POST $HOLDFAST_FAKE_STRIPE_URL/_fake/checkout/sessions/SESSION_ID/pay\n"
            "      (the customer pays on the fake Stripe, which sends checkout.session.completed"
            " to the webhook service)"
        )
    else:
        key = os.environ.get(STRIPE_KEY_ENV, "")
        mode = "test mode" if "_test_" in key else "NOT a test key: real payments"
        stripe = (
            f"Stripe         the account of {STRIPE_KEY_ENV} ({mode}); no fake Stripe\n"
            f"               forward its events: stripe listen --forward-to"
            f" localhost:{webhooks.other_ports[0]}{WEBHOOK_PATH}"
        )
        pay = (
            "  open the checkout's url and pay with the test card 4242 4242 4242 4242\n"
            "      (Stripe sends checkout.session.completed through `stripe listen`)"
        )
        http_pay = pay
    print(
        f"""
gateway        HTTP {gateway_url}  (the JSON API /v1/...; OpenAPI UI {gateway_url}/docs)
               health /healthz /readyz, metrics {gateway_url}/metrics
               log {state_dir / gateway.log_name}
booking        gRPC localhost:{booking.port}  (BookingService, InventoryService, health, reflection)
               {_metrics_line(booking)}
               log {state_dir / booking.log_name}
availability   gRPC localhost:{availability.port}  (AvailabilityService, health, reflection)
               {_metrics_line(availability)}
               log {state_dir / availability.log_name}
webhooks       Stripe events POST {webhook_url}
               gRPC localhost:{webhooks.port}  (WebhookAdminService, health, reflection)
               {_metrics_line(webhooks)}
               log {state_dir / webhooks.log_name}
{stripe}
Postgres       {found.database_url}
               ({pg_origin})
Redis          {found.redis_url}
               ({redis_origin})
state          {state_dir}  (`make clean-state` deletes it)
env file       {env_file}  (the addresses above and the demo API key as shell exports;
               `make bench` reads it)
demo tenant    "{DEMO_TENANT}": {demo}
               sold in slots: a kayak tour and a room; for any window: a restaurant,
               a guesthouse and a bike rental (README, "A table for three at 19:30")
               API key with every scope ({key_origin}): $HOLDFAST_DEMO_API_KEY in the env file

Try the HTTP API, from a hold to a paid booking:
  source {env_file}
  AUTH="Authorization: Bearer $HOLDFAST_DEMO_API_KEY"
  curl -s -H "$AUTH" $HOLDFAST_GATEWAY_URL/v1/resources
  AV=$HOLDFAST_GATEWAY_URL/v1/resources/{resource_id}/availability
  WINDOW="{window}"
  curl -s -H "$AUTH" "$AV?$WINDOW"
      (each slot: capacity, available, held, booked)
  curl -N -H "$AUTH" "$AV/stream?$WINDOW"
      (in another terminal, after the same `source` and AUTH, AV, WINDOW: an
      `availability` event now, and again at every change below)
  curl -s -H "$AUTH" -H "Idempotency-Key: try-1" -H "Content-Type: application/json" \\
    -d '{{"resource_id": "{resource_id}", "slot_ids": ["{slot_id}"], "quantity": 2}}' \\
    $HOLDFAST_GATEWAY_URL/v1/holds
      (201, the hold: its id, "status": "held"; the same Idempotency-Key again answers the
      same hold)
  curl -s -H "$AUTH" "$AV?$WINDOW"
      (the first slot: held 2, available 2 fewer)
  curl -s -H "$AUTH" -X POST $HOLDFAST_GATEWAY_URL/v1/holds/HOLD_ID/checkout
      (a Stripe Checkout session for the hold: its session_id and the url to pay on)
{http_pay}
  curl -s -H "$AUTH" $HOLDFAST_GATEWAY_URL/v1/bookings/HOLD_ID
      ("status": "confirmed", "payment_ref": the Stripe payment intent)
  curl -s -H "$AUTH" "$AV?$WINDOW"
      (booked 2, held 0)

Or with the CLI, over gRPC (every command defaults to --tenant {DEMO_TENANT}):
  {cli} resources list{target}
  {cli} availability {resource_id}{a_target}
  {cli} holds create --resource {resource_id} --slot {slot_id} --quantity 2{target}
  {cli} availability {resource_id}{a_target}
      (the first slot now shows held 2 and 2 fewer available)
  {cli} holds checkout HOLD_ID{target}
      (a Stripe Checkout session for the hold: its id and the page to pay on)
{pay}
  {cli} bookings get HOLD_ID{target}
      (CONFIRMED, its payment_ref the Stripe payment intent)
  {cli} availability {resource_id}{a_target}
      (booked 2, held 0)
  {cli} webhooks list{w_target}
      (the Stripe events received, and what each did)

Or with grpcurl (the servers offer reflection):
  grpcurl -plaintext -H 'x-tenant-id: {DEMO_TENANT}' localhost:{booking.port} \\
    holdfast.booking.v1.InventoryService/ListResources

More API keys, after the `source`: {cli} keys create --tenant {DEMO_TENANT} --scope ...
Ctrl-C stops everything.
""",
        file=out,
        flush=True,
    )


def _shown_path(path: Path) -> str:
    """`path` relative to the working directory when it is below it, as a person types it."""
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


def _flag(name: str, value: str, port: int, default_port: int) -> str:
    """` --name value` for a CLI command when the port is not the CLI's default."""
    return f" {name} {value}" if port != default_port else ""


def _metrics_line(service: Service) -> str:
    if service.metrics_port < 0:
        return "metrics off"
    return f"metrics http://localhost:{service.metrics_port}/metrics"


def _cli_command() -> str:
    """`holdfast` if it is on PATH, else the venv's copy next to this Python."""
    if shutil.which("holdfast"):
        return "holdfast"
    script = Path(sys.executable).parent / "holdfast"
    with contextlib.suppress(ValueError):
        return str(script.relative_to(Path.cwd()))
    return str(script)
