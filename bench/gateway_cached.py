"""The gateway's cached availability next to its ceiling, in one run.

The ceiling is a bare Starlette app (bench.gateway_ceiling) on the same
server and settings as the gateway, in its own process, answering the bytes
the gateway answered. Rounds alternate: the gateway's GET, the ceiling's GET,
then the gateway's conditional GET (If-None-Match with the tag it gave, a 304
while nothing changed), so both see the same machine load. The gateway's CPU
per request comes from /proc for the process listening on its port.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from bench.gateway_load import Load, load, wrk_path
from bench.processes import cpu_seconds, listening_pids
from bench.report import met

GATEWAY, CEILING, CONDITIONAL = "gateway GET", "bare app GET", "gateway GET 304"
RATIO_GOAL = 0.35
_CEILING_START_SECONDS = 30.0
_SETTLE_TRIES = 10
_SETTLE_SECONDS = 0.5


@dataclass
class Cached:
    tool: str
    rounds: list[dict[str, Load]] = field(default_factory=list)
    # The gateway's CPU ms per request, per target, per round.
    cpu_ms: dict[str, list[float]] = field(default_factory=dict)
    conditional: str = ""  # why no conditional rounds ran, if they did not
    body_bytes: int = 0

    def median(self, target: str) -> Load | None:
        runs = sorted((r[target] for r in self.rounds if target in r), key=lambda x: x.per_s)
        return runs[len(runs) // 2] if runs else None

    @property
    def ratio(self) -> float | None:
        gateway, ceiling = self.median(GATEWAY), self.median(CEILING)
        if gateway is None or ceiling is None or not ceiling.per_s:
            return None
        return gateway.per_s / ceiling.per_s


async def _start_ceiling(path: str, body: bytes, content_type: str) -> tuple[Any, str]:
    """The ceiling process and its base URL."""
    with tempfile.NamedTemporaryFile("wb", delete=False, suffix=".json") as file:
        file.write(body)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.gateway_ceiling", "--path", path,
        "--body-file", file.name, "--content-type", content_type,
        stdout=subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), _CEILING_START_SECONDS)
    finally:
        os.unlink(file.name)  # read by the time it prints its port, or never
    if not line.startswith(b"port "):
        process.kill()
        raise RuntimeError(f"the bare app did not start: {line!r}")
    return process, f"http://127.0.0.1:{int(line.split()[1])}"


async def _settled(
    client: httpx.AsyncClient, path: str, window: dict[str, str]
) -> tuple[httpx.Response, str]:
    """The answer once its tag holds (the resource's creation reaches the
    gateway through the outbox and the stream a moment after it is made),
    and why there can be no conditional rounds ("" if there can)."""
    why = "never answered"
    for _ in range(_SETTLE_TRIES):
        answer = await client.get(path, params=window)
        answer.raise_for_status()
        tag = answer.headers.get("etag")
        if tag is None:
            return answer, "the gateway sends no ETag"
        await asyncio.sleep(_SETTLE_SECONDS)
        again = await client.get(path, params=window, headers={"If-None-Match": tag})
        if again.status_code == 304:
            return answer, ""
        why = f"If-None-Match answered {again.status_code}, not 304"
    return answer, why


async def measure_cached(
    client: httpx.AsyncClient, key: str, resource_id: str, window: dict[str, str], args: Any
) -> Cached:
    path = f"/v1/resources/{resource_id}/availability"
    first, why_not = await _settled(client, path, window)
    url_path = f"{path}?{urlencode(window)}"
    tag = first.headers.get("etag")
    cached = Cached("wrk" if wrk_path() else "python (httpx; wrk not found)")
    cached.body_bytes = len(first.content)
    cached.conditional = why_not
    gateway_url = str(client.base_url).rstrip("/")
    port = urlsplit(gateway_url).port
    pids = listening_pids(port) if port else []
    auth = {"Authorization": f"Bearer {key}"}
    content_type = first.headers.get("content-type", "application/json")
    process, ceiling_url = await _start_ceiling(path, first.content, content_type)
    targets = [(GATEWAY, gateway_url, auth), (CEILING, ceiling_url, auth)]
    if not cached.conditional and tag is not None:
        targets.append((CONDITIONAL, gateway_url, {**auth, "If-None-Match": tag}))
    try:
        for _ in range(args.cached_rounds):
            this: dict[str, Load] = {}
            for name, base, headers in targets:
                before = cpu_seconds(pids) if pids else None
                this[name] = await load(
                    base + url_path, headers, args.cached_connections, args.cached_seconds,
                    use_wrk=wrk_path() is not None,
                )  # fmt: skip
                after = cpu_seconds(pids) if pids else None
                if name != CEILING and before is not None and after is not None:
                    used = (after - before) * 1000 / max(1, this[name].requests)
                    cached.cpu_ms.setdefault(name, []).append(used)
            cached.rounds.append(this)
    finally:
        process.terminate()
        await process.wait()
    return cached


def print_cached(cached: Cached, connections: int) -> dict[str, Any]:
    print(
        f"  cached availability ({cached.body_bytes} bytes of JSON), {connections} connections,"
        f" {len(cached.rounds)} alternating rounds, client: {cached.tool}"
    )
    print(
        f"  {'target':<18}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}"
        f"{'B/answer':>10}{'gw CPU ms/req':>15}   (the median round by req/s)"
    )
    figures: dict[str, Any] = {}
    for target in (GATEWAY, CEILING, CONDITIONAL):
        run = cached.median(target)
        if run is None:
            continue
        cpu = cached.cpu_ms.get(target)
        cpu_ms = statistics.median(cpu) if cpu else None
        lat = run.latencies
        print(
            f"  {target:<18}{run.per_s:9.0f}{lat.p50_ms:9.1f}{lat.p95_ms:9.1f}{lat.p99_ms:9.1f}"
            f"{run.errors:8d}{run.bytes_per_response:10.0f}"
            + (f"{cpu_ms:15.3f}" if cpu_ms is not None else f"{'-':>15}")
        )
        figures[target] = run.figures() | {"gateway_cpu_ms_per_request": cpu_ms}
    ratio = cached.ratio
    if ratio is not None:
        per_round = ", ".join(
            f"{r[GATEWAY].per_s / r[CEILING].per_s:.3f}" for r in cached.rounds if r[CEILING].per_s
        )
        print(
            f"  gateway / bare app: {ratio:.3f} (rounds: {per_round});"
            f" goal >= {RATIO_GOAL}: {met(ratio >= RATIO_GOAL)}"
        )
    if cached.conditional:
        print(f"  no conditional rounds: {cached.conditional}")
    print()
    return {"targets": figures, "ratio": ratio, "conditional": cached.conditional or None}
