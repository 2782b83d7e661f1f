"""The gateway bench's ceiling: a bare Starlette app answering one path with
fixed bytes, served by holdfast.platform.http_server.HttpHost on uvloop, the
very server and settings the gateway runs on (http implementation, loop,
proxy headers, keep-alive), in a process of its own.

    python -m bench.gateway_ceiling --path /v1/... --body-file F --content-type T

Prints the port it listens on (a line "port N"), then serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from holdfast.platform.http_server import HttpHost
from holdfast.platform.service import run_until_signalled


def bare_app(path: str, body: bytes, content_type: str) -> Starlette:
    async def answer(request: Request) -> Response:
        return Response(body, media_type=content_type)

    return Starlette(routes=[Route(path, answer)])


def main(argv: Sequence[str] | None = None) -> int:
    import uvloop

    parser = argparse.ArgumentParser(prog="python -m bench.gateway_ceiling")
    parser.add_argument("--path", required=True)
    parser.add_argument("--body-file", required=True)
    parser.add_argument("--content-type", default="application/json")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with open(args.body_file, "rb") as file:
        body = file.read()
    host = HttpHost(bare_app(args.path, body, args.content_type), "127.0.0.1", args.port, 1.0)

    async def start() -> None:
        port = await host.start()
        print(f"port {port}", flush=True)

    uvloop.run(run_until_signalled(start, host.stop))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
