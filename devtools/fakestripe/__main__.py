"""`python -m devtools.fakestripe`: the fake Stripe as a process of its own.

    python -m devtools.fakestripe --port 12111 --api-key sk_test_... \\
        --webhook-url http://127.0.0.1:8080/stripe/webhook --webhook-secret whsec_...

Every flag has a `HOLDFAST_FAKE_STRIPE_*` variable (flags win); see
FakeStripeSettings. Runs until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

import uvloop
from pydantic import ValidationError

from devtools.fakestripe.config import FakeStripeSettings
from devtools.fakestripe.server import FakeStripe
from holdfast.platform.logging import configure_logging
from holdfast.platform.service import run_until_signalled


def parse_args(argv: list[str]) -> dict[str, Any]:
    """The flags given, as FakeStripeSettings fields (absent flags: None)."""
    parser = argparse.ArgumentParser(
        prog="python -m devtools.fakestripe",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument(
        "--api-key", action="append", help="an accepted API key (repeat for several)"
    )
    parser.add_argument("--webhook-url")
    parser.add_argument("--webhook-secret")
    parser.add_argument("--enabled-events", help='comma-separated event types, or "*"')
    parser.add_argument("--max-attempts", type=int, help="delivery attempts per event")
    parser.add_argument("--retry-backoff-seconds", type=float)
    parser.add_argument("--public-url", help="the address browsers reach the fake at")
    parser.add_argument("--log-level")
    args = vars(parser.parse_args(argv))
    if args["api_key"]:
        args["api_key"] = ",".join(args["api_key"])
    return {name: value for name, value in args.items() if value is not None}


def load_settings(argv: list[str]) -> FakeStripeSettings:
    """The environment, overridden by flags; exits with a clear message if wrong."""
    try:
        return FakeStripeSettings(**parse_args(argv))
    except ValidationError as exc:
        lines = ["invalid configuration for the fake Stripe:"]
        for error in exc.errors():
            name = "_".join(str(part) for part in error["loc"])
            lines.append(f"  --{name.replace('_', '-')} / HOLDFAST_FAKE_STRIPE_{name.upper()}:")
            lines.append(f"    {error['msg']}")
        print("\n".join(lines), file=sys.stderr)
        raise SystemExit(2) from None


async def serve(settings: FakeStripeSettings) -> None:
    fake = FakeStripe(settings.config())

    async def start() -> None:
        await fake.start()
        # One plain line on stdout, for whoever started the process to wait for.
        print(f"fake Stripe listening on {fake.base_url}", flush=True)

    await run_until_signalled(start, fake.stop)


def main(argv: list[str] | None = None) -> None:
    settings = load_settings(sys.argv[1:] if argv is None else argv)
    configure_logging("fake-stripe", settings.log_level)
    # uvicorn's start/stop chatter (with terminal colour codes) adds nothing
    # to the fake's own "listening on" line.
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    uvloop.run(serve(settings))


if __name__ == "__main__":
    main()
