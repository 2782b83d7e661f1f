"""Closed-loop load on one URL for the gateway bench: `connections` clients,
each sending the next GET as soon as the last is answered. wrk when it is
installed (its client costs a fraction of the server's work, so the figure is
the server's); otherwise a Python client, which on a small machine is itself
the bottleneck: the report says which ran.

Every request carries an X-Forwarded-For of its own (one of 65,536 10.x.y.z
addresses per client thread), so the gateway's per-address rate limit counts
them as the many users they stand for.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass

import httpx

from bench.stats import Latencies

WRK_THREADS = 2
_WRK_MARK = "WRKJSON "
# Per thread: rotate the client address; at the end print every figure as JSON.
_WRK_SCRIPT = """
local counter = 0
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
function request()
  counter = counter + 1
  local n = counter % 65536
  wrk.headers["X-Forwarded-For"] =
    string.format("10.%d.%d.%d", 100 + tid, math.floor(n / 256), n % 256)
  return wrk.format(nil, nil, nil, nil)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {\\"requests\\":%d,\\"duration_us\\":%d,\\"bytes\\":%d,\\"socket_errors\\":%d,"
    .. "\\"status_errors\\":%d,\\"p50_us\\":%d,\\"p95_us\\":%d,\\"p99_us\\":%d,\\"max_us\\":%d}\\n",
    summary.requests, summary.duration, summary.bytes,
    e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


@dataclass(frozen=True)
class Load:
    tool: str
    requests: int
    seconds: float
    errors: int
    bytes_per_response: float
    latencies: Latencies

    @property
    def per_s(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def figures(self) -> dict[str, float | int | str]:
        lat = self.latencies
        return {
            "tool": self.tool,
            "requests": self.requests,
            "per_s": round(self.per_s, 1),
            "errors": self.errors,
            "bytes_per_response": round(self.bytes_per_response),
            "p50_ms": round(lat.p50_ms, 2),
            "p95_ms": round(lat.p95_ms, 2),
            "p99_ms": round(lat.p99_ms, 2),
            "max_ms": round(lat.max_ms, 2),
        }


def wrk_path() -> str | None:
    return shutil.which("wrk")


async def load(
    url: str, headers: dict[str, str], connections: int, seconds: float, *, use_wrk: bool
) -> Load:
    if use_wrk:
        return await asyncio.to_thread(_wrk, url, headers, connections, seconds)
    return await _python(url, headers, connections, seconds)


def _wrk(url: str, headers: dict[str, str], connections: int, seconds: float) -> Load:
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(_WRK_SCRIPT)
        script.flush()
        command = [
            wrk_path() or "wrk",
            f"-t{min(WRK_THREADS, connections)}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            script.name,
        ]
        for name, value in headers.items():
            command += ["-H", f"{name}: {value}"]
        done = subprocess.run(
            [*command, url], capture_output=True, text=True, check=True, timeout=seconds + 60
        )
    line = next(x for x in done.stdout.splitlines() if x.startswith(_WRK_MARK))
    got = json.loads(line[len(_WRK_MARK) :])
    requests = int(got["requests"])
    return Load(
        tool="wrk",
        requests=requests,
        seconds=got["duration_us"] / 1e6,
        errors=int(got["socket_errors"]) + int(got["status_errors"]),
        bytes_per_response=got["bytes"] / requests if requests else 0.0,
        latencies=Latencies(
            requests,
            got["p50_us"] / 1e3,
            got["p95_us"] / 1e3,
            got["p99_us"] / 1e3,
            got["max_us"] / 1e3,
        ),
    )


async def _python(url: str, headers: dict[str, str], connections: int, seconds: float) -> Load:
    """The fallback client: `connections` loops over one httpx client."""
    timings: list[float] = []
    errors = 0
    size = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=10.0) as client:
        begin = time.perf_counter()
        deadline = begin + seconds

        async def loop(number: int) -> None:
            nonlocal errors, size
            sent = 0
            while time.perf_counter() < deadline:
                sent += 1
                address = f"10.{100 + number % 100}.{(sent >> 8) & 255}.{sent & 255}"
                started = time.perf_counter()
                try:
                    answer = await client.get(url, headers={**headers, "X-Forwarded-For": address})
                except httpx.HTTPError:
                    errors += 1
                    continue
                timings.append(time.perf_counter() - started)
                size += len(answer.content)
                if answer.status_code >= 400:
                    errors += 1

        await asyncio.gather(*(loop(i) for i in range(connections)))
        elapsed = time.perf_counter() - begin
    return Load(
        tool="python (httpx; wrk not found)",
        requests=len(timings),
        seconds=elapsed,
        errors=errors,
        bytes_per_response=size / len(timings) if timings else 0.0,
        latencies=Latencies.of(timings),
    )
