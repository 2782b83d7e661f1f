"""Development commands: `python -m devtools up | testenv | pay`.

None of this ships: the production image carries the services, the gateway
and the shared library (`holdfast`), not the local stack, the embedded
engines, the demo data or the fake Stripe. `make up` and `make test` run
`up` and `testenv`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

from devtools.fakestripe.config import DEFAULT_PORT as FAKE_STRIPE_PORT

DEFAULT_FAKE_STRIPE_URL = f"http://127.0.0.1:{FAKE_STRIPE_PORT}"


def _pay(args: argparse.Namespace) -> int:
    """`python -m devtools pay`: the customer pays a checkout session on the local fake Stripe."""
    base = args.fake_stripe.rstrip("/")
    session = urllib.parse.quote(args.session, safe="")
    request = urllib.request.Request(  # noqa: S310 - an http(s) URL the user gave
        f"{base}/_fake/checkout/sessions/{session}/pay",
        data=json.dumps({"async_payment": False, "deliver": True}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    # No proxy: the fake runs on this machine, whatever http_proxy says.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=args.timeout) as response:
            event = json.load(response)
    except urllib.error.HTTPError as error:
        print(
            f"error: the fake Stripe answered {error.code}: {_stripe_error(error)}", file=sys.stderr
        )
        return 1
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        print(
            f"error: no fake Stripe answered at {base} ({reason}). `python -m devtools pay`"
            " only works with the local fake Stripe, which `make up` starts when"
            " HOLDFAST_STRIPE_API_KEY is not set; with a real Stripe key, pay on the"
            " checkout's url.",
            file=sys.stderr,
        )
        return 1
    paid = event["data"]["object"]
    print(f"session   {paid['id']}  {paid['status']}, {paid['payment_status']}")
    print(f"payment   {paid.get('payment_intent') or '-'}")
    print(f"event     {event['id']}  {event['type']}, sent to the fake's webhook endpoint")
    return 0


def _stripe_error(error: urllib.error.HTTPError) -> str:
    """The message of a Stripe-style error body, else the body itself."""
    body = error.read().decode(errors="replace")
    try:
        message = json.loads(body)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return body.strip() or str(error.reason)
    return str(message)


def _pay_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools pay",
        description="Plays the customer paying SESSION_ID by card on the local fake Stripe"
        " (devtools.fakestripe, which `make up` starts when HOLDFAST_STRIPE_API_KEY is not set):"
        " the session completes and the fake sends checkout.session.completed to the webhook"
        " service, which confirms the hold. Only for the fake; with a real Stripe key, open the"
        " checkout's url and pay there (test card 4242 4242 4242 4242).",
    )
    parser.add_argument(
        "session",
        metavar="SESSION_ID",
        help="a checkout session id (cs_...), from `holdfast holds checkout`",
    )
    parser.add_argument(
        "--fake-stripe",
        default=os.environ.get("HOLDFAST_FAKE_STRIPE_URL", DEFAULT_FAKE_STRIPE_URL),
        metavar="URL",
        help="the fake Stripe's address (env HOLDFAST_FAKE_STRIPE_URL;"
        f" default {DEFAULT_FAKE_STRIPE_URL})",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds")
    return _pay(parser.parse_args(argv))


USAGE = """usage: python -m devtools COMMAND [ARGS...]

  up        run the local stack in the foreground (what `make up` runs)
  testenv   run a command with test Postgres/Redis URLs set (what `make test` runs)
  pay       the customer pays a checkout session on the local fake Stripe
"""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Each command owns its whole argument list (testenv passes a command on).
    command, rest = (argv[0], argv[1:]) if argv else ("", [])
    if command == "up":
        from devtools.stack import up_main

        return up_main(rest)
    if command == "testenv":
        from devtools.stack import testenv_main

        return testenv_main(rest)
    if command == "pay":
        return _pay_main(rest)
    print(USAGE, file=sys.stderr if command not in ("-h", "--help") else sys.stdout)
    return 0 if command in ("-h", "--help") else 2
