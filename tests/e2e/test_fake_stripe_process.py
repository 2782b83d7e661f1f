"""`python -m devtools.fakestripe` as `make up` runs it: configured by the
environment and flags, serving the real stripe client, sending signed events,
stopping cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import stripe

from devtools.engines import free_port, stop_child
from tests.support.stack import wait_until_listening
from tests.support.stripe import STRIPE_CLIENT_WARNING, WebhookReceiver, session_params

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings(STRIPE_CLIENT_WARNING)]

SECRET = "whsec_e2e_fake"


def start_fake(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "devtools.fakestripe", *args],
            env={**os.environ, **env},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


async def test_the_standalone_fake_serves_the_client_and_sends_events(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "fakestripe.log"
    async with WebhookReceiver(SECRET) as receiver:
        env = {
            "HOLDFAST_FAKE_STRIPE_API_KEY": "sk_test_from_env",
            "HOLDFAST_FAKE_STRIPE_WEBHOOK_URL": receiver.url,
            "HOLDFAST_FAKE_STRIPE_WEBHOOK_SECRET": SECRET,
        }
        # A flag wins over its variable.
        process = start_fake(["--port", str(port), "--api-key", "sk_test_from_flag"], env, log)
        try:
            await wait_until_listening(process, log)
            base = f"http://127.0.0.1:{port}"
            http_client = stripe.HTTPXClient(timeout=10)
            try:
                client = stripe.StripeClient(
                    "sk_test_from_flag", base_addresses={"api": base}, http_client=http_client
                )
                session = await client.v1.checkout.sessions.create_async(session_params())
                env_keyed = stripe.StripeClient(
                    "sk_test_from_env", base_addresses={"api": base}, http_client=http_client
                )
                with pytest.raises(stripe.AuthenticationError):
                    await env_keyed.v1.checkout.sessions.retrieve_async(session.id)
            finally:
                await http_client.close_async()  # type: ignore[no-untyped-call]
            async with httpx.AsyncClient(base_url=base) as http:
                paid = await http.post(f"/_fake/checkout/sessions/{session.id}/pay")
            assert paid.status_code == 200

            (delivered,) = await receiver.wait_for(1, deadline=10)
            assert delivered.event.id == paid.json()["id"]
            assert delivered.event.data.object.id == session.id

            process.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(process.wait, 10) == 0
        finally:
            stop_child(process)
