"""The load of `bench.availability`'s hits phase and of its ceiling: the same
calls from the same client processes against either server.

One Python process cannot load a gRPC server written in Python: its own
client side costs about as much CPU per call as the server side does, so a
single client process would measure itself. `LoadClients` runs several
processes (spawned, so no gRPC state is forked), each with its own channels
to every target and its share of the calls in flight. A round starts in
every process at one agreed moment and lasts as long; each process answers
its latencies, outcomes and CPU time, merged into one `Phase`.

Calls are raw bytes both ways: the request serialized once, each answer
compared byte for byte with the expected one (the first answer the service
gave, checked by the caller), so the client spends nothing on protobuf and
any wrong answer is still caught.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection

import grpc

from bench.grpc_load import CALL_TIMEOUT_SECONDS, CONNECT_TIMEOUT_SECONDS, OK, Phase
from holdfast.platform.grpc_errors import details_of

WRONG = "WRONG"
# Rounds start this long after they are asked for, so every process is
# waiting when the moment comes (spawned processes answer within milliseconds).
START_DELAY_SECONDS = 0.3


@dataclass(frozen=True)
class Target:
    """One server to load: where, which method, what to send and expect."""

    address: str
    method: str
    request: bytes
    expected: bytes
    metadata: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Round:
    target: str  # a name given to `LoadClients.connect`
    in_flight: int
    seconds: float
    start_at: float  # time.time() when every process begins


@dataclass(frozen=True)
class RoundResult:
    latencies: list[float]
    outcomes: dict[str, int]
    wall_seconds: float
    cpu_seconds: float


class _Caller:
    """One process's calls to one target, over its channels in turn."""

    def __init__(self, target: Target, channels: int) -> None:
        self.target = target
        self.channels = [
            grpc.aio.insecure_channel(
                target.address, options=[("grpc.use_local_subchannel_pool", 1)]
            )
            for _ in range(channels)
        ]
        self.calls = [c.unary_unary(target.method) for c in self.channels]

    async def call(self, i: int) -> str:
        try:
            answer = await self.calls[i % len(self.calls)](
                self.target.request, metadata=self.target.metadata, timeout=CALL_TIMEOUT_SECONDS
            )
        except grpc.aio.AioRpcError as error:
            details = details_of(error)
            return f"{details.code.name}/{details.reason or '-'}"
        return OK if answer == self.target.expected else WRONG


async def _run_round(caller: _Caller, work: Round) -> RoundResult:
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    await asyncio.sleep(max(0.0, work.start_at - time.time()))
    start = time.perf_counter()
    deadline = start + work.seconds
    cpu = time.process_time()
    counter = iter(range(1 << 62))

    async def worker() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            outcome = await caller.call(next(counter))
            latencies.append(time.perf_counter() - started)
            outcomes[outcome] += 1

    await asyncio.gather(*(worker() for _ in range(work.in_flight)))
    return RoundResult(
        latencies, dict(outcomes), time.perf_counter() - start, time.process_time() - cpu
    )


async def _serve_commands(connection: Connection, channels: int) -> None:
    loop = asyncio.get_running_loop()
    callers: dict[str, _Caller] = {}
    while True:
        command, argument = await loop.run_in_executor(None, connection.recv)
        if command == "connect":
            name, target = argument
            caller = callers[name] = _Caller(target, channels)
            await asyncio.wait_for(
                asyncio.gather(*(c.channel_ready() for c in caller.channels)),
                CONNECT_TIMEOUT_SECONDS,
            )
            connection.send(None)
        elif command == "run":
            connection.send(await _run_round(callers[argument.target], argument))
        else:
            for caller in callers.values():
                await asyncio.gather(*(c.close() for c in caller.channels))
            connection.send(None)
            return


def _process_main(connection: Connection, channels: int) -> None:
    asyncio.run(_serve_commands(connection, channels))


class LoadClients:
    """Several client processes, loading one target at a time together."""

    def __init__(self, processes: int, channels_per_process: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipes: list[Connection] = []
        self._processes = []
        for _ in range(processes):
            ours, theirs = context.Pipe()
            process = context.Process(
                target=_process_main, args=(theirs, channels_per_process), daemon=True
            )
            process.start()
            self._pipes.append(ours)
            self._processes.append(process)

    @property
    def count(self) -> int:
        return len(self._processes)

    async def _ask_all(self, commands: Sequence[tuple[str, object]]) -> list[object]:
        for pipe, command in zip(self._pipes, commands, strict=True):
            pipe.send(command)
        return [await asyncio.to_thread(pipe.recv) for pipe in self._pipes]

    async def connect(self, name: str, target: Target) -> None:
        await self._ask_all([("connect", (name, target))] * self.count)

    async def run(self, label: str, name: str, in_flight: int, seconds: float) -> Phase:
        """`in_flight` calls kept busy for `seconds`, spread over the processes."""
        start_at = time.time() + START_DELAY_SECONDS
        shares = [in_flight // self.count + (i < in_flight % self.count) for i in range(self.count)]
        results = await self._ask_all(
            [("run", Round(name, share, seconds, start_at)) for share in shares]
        )
        phase = Phase(label)
        for result in results:
            assert isinstance(result, RoundResult)
            phase.latencies.extend(result.latencies)
            phase.outcomes.update(result.outcomes)
            phase.client_cpu_seconds += result.cpu_seconds
            phase.wall_seconds = max(phase.wall_seconds, result.wall_seconds)
        phase.rounds = [round(phase.throughput, 1)]
        return phase

    async def close(self) -> None:
        await self._ask_all([("stop", None)] * self.count)
        for process in self._processes:
            process.join(timeout=10)
