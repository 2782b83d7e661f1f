"""What `python -m devtools up` plans to run, and the walkthrough it prints, without running it."""

from __future__ import annotations

import argparse
import io
from datetime import date
from pathlib import Path

import pytest

from devtools.banner import print_banner
from devtools.engines import Engines, StackError
from devtools.plan import check_ports, plan_stack

PORTS = {
    "booking_port": 50051,
    "availability_port": 50052,
    "webhooks_port": 50053,
    "webhooks_http_port": 8081,
    "fake_stripe_port": 12111,
    "gateway_port": 8080,
    "booking_metrics_port": 9101,
    "availability_metrics_port": 9102,
    "webhooks_metrics_port": 9103,
}


def _args(**changes: int) -> argparse.Namespace:
    return argparse.Namespace(**{**PORTS, **changes})


def test_the_gateway_starts_last_so_it_stops_first_and_calls_this_stacks_services() -> None:
    stack = plan_stack(_args(booking_port=50061, availability_port=50062, gateway_port=8090), {})

    assert [s.name for s in stack.services()] == [
        "fake-stripe",
        "booking",
        "availability",
        "webhooks",
        "gateway",
    ]
    gateway = stack.gateway
    assert (gateway.module, gateway.port, gateway.health_service) == ("gateway", 8090, None)
    assert gateway.ready_paths == ("/healthz", "/readyz")
    assert gateway.settings == {
        "HOLDFAST_GATEWAY_PORT": "8090",
        "HOLDFAST_BOOKING_TARGET": "127.0.0.1:50061",
        "HOLDFAST_AVAILABILITY_TARGET": "127.0.0.1:50062",
        # The fake Stripe the services use, for /readyz.
        "HOLDFAST_STRIPE_API_BASE": "http://127.0.0.1:12111",
    }


def test_with_a_stripe_account_the_gateway_reports_on_stripe_itself() -> None:
    environ = {"HOLDFAST_STRIPE_API_KEY": "sk_test_x", "HOLDFAST_STRIPE_WEBHOOK_SECRETS": "whsec_x"}
    stack = plan_stack(_args(), environ)

    assert stack.fake_stripe is None
    assert stack.gateway.settings is not None
    assert stack.gateway.settings["HOLDFAST_STRIPE_API_BASE"] == "https://api.stripe.com"


def test_a_gateway_port_given_to_another_service_too_is_refused() -> None:
    with pytest.raises(StackError, match="port 8081 is given to both webhooks and gateway"):
        check_ports(plan_stack(_args(gateway_port=8081), {}))


def test_the_banner_walks_through_the_http_api_with_the_demo_ids(tmp_path: Path) -> None:
    stack = plan_stack(_args(gateway_port=8090), {})
    found = Engines("postgresql://x/holdfast", "redis://127.0.0.1:1/0", ("here", "there"))
    out = io.StringIO()

    print_banner(found, tmp_path, stack, True, ("RID", "SID"), True, out, date(2030, 5, 1))

    text = out.getvalue()
    assert "gateway        HTTP http://localhost:8090" in text
    assert "http://localhost:8090/docs" in text
    assert 'AUTH="Authorization: Bearer $HOLDFAST_DEMO_API_KEY"' in text
    assert "AV=$HOLDFAST_GATEWAY_URL/v1/resources/RID/availability" in text
    assert 'WINDOW="start=2030-05-01T00:00:00Z&end=2030-05-17T00:00:00Z"' in text
    assert 'curl -N -H "$AUTH" "$AV/stream?$WINDOW"' in text
    assert '-H "Idempotency-Key: try-1"' in text
    assert '"slot_ids": ["SID"]' in text
    assert "$HOLDFAST_GATEWAY_URL/v1/holds/HOLD_ID/checkout" in text
    assert "$HOLDFAST_FAKE_STRIPE_URL/_fake/checkout/sessions/SESSION_ID/pay" in text
    assert "$HOLDFAST_GATEWAY_URL/v1/bookings/HOLD_ID" in text
    # The HTTP walkthrough comes first, the CLI second.
    assert text.index("curl -s") < text.index("resources list")
