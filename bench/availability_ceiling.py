"""The ceiling of `bench.availability`'s cache hits: a bare `grpc.aio` server,
in a process of its own, answering GetAvailability with the very bytes a
cached hit answers (the same message, serialized once).

    python -m bench.availability_ceiling ANSWER_FILE

It prints the port it bound (on 127.0.0.1, a free one) as its first line and
serves until SIGTERM. No interceptors, no validation, no cache: gRPC's own
cost of a call, on the same event loop the services run on (uvloop).
`Ceiling` starts and stops it from the benchmark.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path

import grpc
import uvloop

from holdfast.contracts.availability.v1 import availability_pb2

SERVICE = availability_pb2.DESCRIPTOR.services_by_name["AvailabilityService"].full_name
START_TIMEOUT_SECONDS = 30.0


def _handler(answer: bytes) -> grpc.GenericRpcHandler:
    """GetAvailability with no (de)serializers: bytes in, the answer's bytes out."""

    async def get_availability(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return answer

    return grpc.method_handlers_generic_handler(
        SERVICE, {"GetAvailability": grpc.unary_unary_rpc_method_handler(get_availability)}
    )


async def _serve(answer: bytes) -> None:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((_handler(answer),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    await stopping.wait()
    await server.stop(None)


class Ceiling:
    """The bare server as a child process: its target and pid, while started."""

    def __init__(self, answer_file: Path) -> None:
        self._answer_file = answer_file
        self._process: asyncio.subprocess.Process | None = None
        self.target = ""

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    async def start(self, answer: bytes) -> None:
        self._answer_file.write_bytes(answer)
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.availability_ceiling",
            str(self._answer_file),
            stdout=asyncio.subprocess.PIPE,
        )
        assert self._process.stdout is not None
        line = await asyncio.wait_for(self._process.stdout.readline(), START_TIMEOUT_SECONDS)
        if not line.strip().isdigit():
            raise RuntimeError("the bare gRPC server did not start")
        self.target = f"127.0.0.1:{int(line)}"

    async def stop(self) -> None:
        if self._process is None or self._process.returncode is not None:
            return
        self._process.send_signal(signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._process.wait(), 10)
            return
        self._process.kill()
        await self._process.wait()


def main() -> None:
    answer = Path(sys.argv[1]).read_bytes()
    uvloop.run(_serve(answer))


if __name__ == "__main__":
    main()
