"""The webhook receiver's ceiling: the irreducible work of acknowledging a
Stripe delivery, served in a process of its own, for `bench.webhooks` to
measure side by side with the real receiver.

    python -m bench.webhooks_ceiling --secret whsec_... [--port 0]

A bare Starlette app on the same embedded uvicorn server the services use
(holdfast.platform.http_server.HttpHost, so the same server settings) that
reads the body, verifies its Stripe signature with the receiver's own check
(services.webhooks.verification) and answers 200 with the receiver's answer.
It stores nothing: what the real receiver takes beyond this is the parse,
the durable insert into the inbox, and its own telemetry.

It prints `listening <port>` once serving, and stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import uvloop
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from holdfast.platform.http_server import HttpHost
from holdfast.platform.service import run_until_signalled
from services.webhooks.verification import BadSignature, verify

PATH = "/stripe/webhook"
TOLERANCE_SECONDS = 300  # the receiver's default
STOP_TIMEOUT_SECONDS = 10.0


def ceiling_app(secret: str) -> Starlette:
    async def acknowledge(request: Request) -> Response:
        body = await request.body()
        try:
            verify(body, request.headers.get("stripe-signature"), [secret], TOLERANCE_SECONDS)
        except BadSignature as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        return JSONResponse({"received": True, "duplicate": False})

    return Starlette(routes=[Route(PATH, acknowledge, methods=["POST"])])


async def _serve(secret: str, port: int) -> None:
    host = HttpHost(ceiling_app(secret), "127.0.0.1", port, grace_seconds=1.0)

    async def start() -> None:
        bound = await host.start()
        print(f"listening {bound}", flush=True)

    await run_until_signalled(start, host.stop)


@dataclass
class CeilingProcess:
    """The ceiling, started by the bench in a process of its own."""

    process: subprocess.Popen[str]
    url: str

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    def start(cls, secret: str) -> CeilingProcess:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.webhooks_ceiling", "--secret", secret],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        line = process.stdout.readline().split()
        if len(line) != 2 or line[0] != "listening":
            process.kill()
            raise RuntimeError("the webhook ceiling did not start")
        return cls(process, f"http://127.0.0.1:{line[1]}{PATH}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
        with contextlib.suppress(OSError):
            if self.process.stdout is not None:
                self.process.stdout.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.webhooks_ceiling")
    parser.add_argument("--secret", required=True, help="the signing secret to verify with")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free one")
    args = parser.parse_args(argv)
    uvloop.run(_serve(args.secret, args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
