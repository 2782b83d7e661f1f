"""What `bench.gateway` prints: per-route figures, where the time goes, the
processes' CPU, the checks, and the one JSON line for machines."""

from __future__ import annotations

import math
import os
import platform
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from bench.gateway_cached import print_cached
from bench.gateway_options import Options
from bench.gateway_results import Results
from bench.gateway_users import BENCH_KEY_RATE, ERROR_RATE_TARGET, P95_TARGET_MS, WRONG
from bench.gateway_window import breakdown, round_or_none
from bench.metrics import cache_levels
from bench.report import met
from bench.stats import Latencies


def _ms(value: float | None) -> str:
    return "       -" if value is None or math.isnan(value) else f"{value:8.1f}"


def report(options: Options, results: Results) -> dict[str, Any]:
    wrong = sum(1 for call in results.record.calls if call.outcome == WRONG)
    _print_setup(options, results)
    cached = print_cached(results.cached, options.cached_connections) if results.cached else None
    holds_per_s = _print_routes(results, wrong)
    rows, levels = _print_window(results)
    _print_after(results)
    return _figures(options, results, wrong, holds_per_s, rows, levels) | {"cached": cached}


def _print_setup(options: Options, results: Results) -> None:
    print(
        f"holdfast gateway benchmark  gateway={options.gateway_url}  tenant={results.tenant}\n"
        f"  {os.cpu_count()} CPUs (shared by the bench and the whole stack), Python"
        f" {platform.python_version()}, PostgreSQL {results.postgres}\n"
        f"  {options.users} users over {results.clients} aiohttp sessions"
        f" ({options.users_per_client} users each, a connection per user);"
        f" think {options.think_ms:g} ms (0.5x-1.5x);"
        f" each cycle {options.browse} availability reads, a hold, its release;"
        f" {options.resources} resources x {options.slots} slots\n"
        f"  rate limits: the bench key allows {BENCH_KEY_RATE}/s, so the per-key limit does not"
        " throttle; "
        + (
            "every request comes from 127.0.0.1 (--one-address): the per-address limit applies"
            " to all users together"
            if options.one_address
            else "each user sends an X-Forwarded-For of its own, so the per-address limit"
            " applies per user, as for real users"
        )
        + f"\n  measured {options.seconds:g} s after a {options.ramp_seconds:g} s ramp"
        f" ({results.started_in_ramp} requests in the ramp not counted)\n"
    )


def _print_routes(results: Results, wrong: int) -> float:
    """The table of routes; the holds taken a second."""
    header = (
        f"  {'route':<18}{'requests':>9}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
        f"{'max ms':>9}{'errors':>8}{'error %':>9}   p95 < {P95_TARGET_MS:.0f} ms,"
        f" errors < {ERROR_RATE_TARGET:.1%}"
    )
    print(header)
    for figures in [*results.routes.values(), results.overall]:
        lat = figures.latencies
        print(
            f"  {figures.route:<18}{figures.requests:9d}{figures.per_s:8.0f}{_ms(lat.p50_ms)}"
            f"{_ms(lat.p95_ms)}{_ms(lat.p99_ms)}{_ms(lat.max_ms)}"
            f"{figures.requests - figures.ok:8d}{figures.error_rate:9.3%}"
            f"   {met(figures.target_met)}"
        )
        for name, count in figures.errors.items():
            print(f"      {name}: {count}")
    holds_per_s = results.routes["POST holds"].ok / results.measured_seconds
    print(f"  holds taken {holds_per_s:.0f}/s; wrong answers {wrong}\n")
    if results.record.examples:
        print("  an example of each error:")
        for name, detail in sorted(results.record.examples.items()):
            print(f"    {name}: {detail}")
        print()
    return holds_per_s


def _print_window(results: Results) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    """Where the time went and what the processes used; the breakdown and the
    availability service's answers by where they came from."""
    window = results.window
    rows = breakdown(results.routes, window.delta)
    print("  where the time goes (mean ms per request in the window):")
    print(f"  {'route':<18}{'client':>9}{'gateway':>9}{'service':>9}   (service call)")
    for route, row in rows.items():
        print(
            f"  {route:<18}{_ms(row['client_ms'])} {_ms(row['gateway_ms'])}"
            f" {_ms(row['service_ms'])}   {row['service']}"
        )
    print(
        "    client: as the bench saw it; gateway: its own handling (auth, rate limits, the"
        " call, the JSON); service: the gRPC service's own handling"
    )
    cpu = ", ".join(
        f"{name} {share:.0%}" if share is not None else f"{name} -"
        for name, share in window.cpu_share.items()
    )
    print(f"  CPU, share of one core: {cpu}")
    if window.machine_cores is not None:
        listed = sum(share for share in window.cpu_share.values() if share is not None)
        print(
            f"  the machine: {window.machine_cores:.2f} of {os.cpu_count()} cores busy; the"
            f" processes above {listed:.2f}, everything else {window.machine_cores - listed:.2f}"
        )
    lag = Latencies.of(window.lag.samples)
    print(
        f"  the bench's event loop woke a 10 ms sleeper late by p50 {lag.p50_ms:.1f}"
        f"  p99 {lag.p99_ms:.1f}  max {lag.max_ms:.1f} ms"
    )
    levels = cache_levels(window.delta.get("availability", {}))
    if levels:
        print(
            "  availability service answers: "
            + ", ".join(f"{name} {count}" for name, count in levels.items())
        )
    for error in window.errors:
        print(f"  (could not read {error})")
    return rows, levels


def _print_after(results: Results) -> None:
    state = results.consistency
    print(
        f"\n  after the run: holds in Postgres {dict(sorted(state.holds.items()))}; slots held"
        f" {state.slots_held}, booked {state.slots_booked}; the gateway shows"
        f" {state.availability_held} held; unanswered hold requests"
        f" {results.record.unknown_holds}, failed releases {results.record.release_failures}"
    )
    for problem in state.problems:
        print(f"  PROBLEM: {problem}")
    print(
        f"  target (p95 < {P95_TARGET_MS:.0f} ms and errors < {ERROR_RATE_TARGET:.1%} on every"
        f" route): {met(all(f.target_met for f in results.routes.values()))}\n"
    )


def _figures(
    options: Options,
    results: Results,
    wrong: int,
    holds_per_s: float,
    rows: dict[str, dict[str, Any]],
    levels: dict[str, int],
) -> dict[str, Any]:
    window, state = results.window, results.consistency
    return {
        "bench": "gateway",
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "gateway": options.gateway_url,
        "tenant": results.tenant,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "postgres": results.postgres,
        },
        "options": asdict(options) | {"database_url": None},
        "bench_key_rate_per_second": BENCH_KEY_RATE,
        "clients": results.clients,
        "routes": {route: f.figures() for route, f in results.routes.items()},
        "overall": results.overall.figures(),
        "holds_per_s": round(holds_per_s, 1),
        "wrong_answers": wrong,
        "started_in_ramp": results.started_in_ramp,
        "breakdown_ms": rows,
        "cpu_share": window.cpu_share,
        "machine_busy_cores": round_or_none(window.machine_cores, 3),
        "bench_loop_lag_ms": {
            k: round(v, 2) for k, v in asdict(Latencies.of(window.lag.samples)).items()
        },
        "availability_answers": levels,
        "after": state.figures()
        | {
            "unknown_holds": results.record.unknown_holds,
            "release_failures": results.record.release_failures,
        },
        "target": {"p95_ms": P95_TARGET_MS, "error_rate": ERROR_RATE_TARGET},
        "target_met": all(f.target_met for f in results.routes.values()),
    }
