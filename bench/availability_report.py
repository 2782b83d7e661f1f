"""What `bench.availability` prints: the throughput table, the invalidation
lag, and the one JSON line for machines."""

from __future__ import annotations

import os
import platform
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from bench.availability_client import Measured
from bench.availability_lag import LAG_P99_TARGET_MS, LagResult
from bench.availability_options import Options
from bench.availability_results import Results
from bench.grpc_load import (
    OK,
    phase_figures,
)
from bench.metrics import cache_levels
from bench.report import met, phase_row
from bench.stats import Latencies

# At 64 calls in flight (the goals).
HIT_P99_TARGET_MS = 20.0
HIT_RATIO_TARGET = 0.7


def report(options: Options, tenant: str, results: Results) -> dict[str, Any]:
    print(
        f"holdfast availability benchmark  availability={options.availability_target}  "
        f"booking={options.booking_target}  tenant={tenant}\n"
        f"  {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{options.channels} gRPC channels from {options.client_processes} client processes "
        f"(hits and bare), concurrency {options.concurrency}\n"
    )
    _print_throughput(options, results)
    figures = _print_lag(options, results.lag)
    return _figures(options, tenant, results, figures)


def _server_cpu(measured: Measured) -> str:
    per_call = measured.server_cpu_ms_per_call
    if per_call is None or measured.server_cpu_seconds is None:
        return f"{'-':>12}{'-':>10}"
    share = measured.server_cpu_seconds / measured.phase.wall_seconds
    return f"{share:12.0%}{per_call:10.3f}"


def _print_throughput(options: Options, results: Results) -> None:
    print(
        f"throughput: {options.rounds} alternating rounds of {options.seconds:g} s per phase, "
        f"after a warm-up each; {options.slots} slots per answer, "
        f"{results.answer_bytes} bytes cached"
    )
    print(
        f"  {'phase':<14}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'errors':>8}{'client cpu':>12}{'server cpu':>12}{'ms/call':>10}   req/s per round"
    )
    for measured in (results.hits, results.bare, results.misses):
        phase = measured.phase
        row, rounds = phase_row(phase, 14, "9.0f", "9.2f").rsplit("   ", 1)
        print(f"{row}{_server_cpu(measured)}   {rounds}")
        for name, count in phase.outcomes.items():
            if name != OK:
                print(f"    {name}: {count}")
        answered = cache_levels(measured.service)
        if answered:
            print("    the service answered: " + ", ".join(f"{k} {v}" for k, v in answered.items()))
    hits_levels = cache_levels(results.hits.service)
    not_hits = sum(v for k, v in hits_levels.items() if not k.endswith(" hit"))
    misses_levels = cache_levels(results.misses.service)
    not_misses = sum(v for k, v in misses_levels.items() if k != "miss")
    if not_hits or not_misses:
        print(
            f"  NOTE: {not_hits} answers of the hits phase were not cache hits and "
            f"{not_misses} of the misses phase were not misses: those figures are mixed"
        )
    bare_p99 = Latencies.of(results.bare.phase.latencies).p99_ms
    print(
        f"  hits / bare grpc.aio {results.ratio:.2f} (target >= {HIT_RATIO_TARGET}: "
        f"{met(results.ratio >= HIT_RATIO_TARGET)}); hit p99 {results.hit_p99_ms:.2f} ms, "
        f"bare p99 {bare_p99:.2f} ms (target < {HIT_P99_TARGET_MS:g} ms: "
        f"{met(results.hit_p99_ms < HIT_P99_TARGET_MS)})\n"
    )


def _print_lag(options: Options, lag: LagResult) -> dict[str, Any]:
    figures = lag.figures()
    print(
        f"invalidation lag: {figures['rounds']} rounds of hold, warm, ConfirmHold, "
        f"then GetAvailability every {options.lag_poll_ms:g} ms until the booking shows"
    )
    if lag.lags:
        p = Latencies.of(lag.lags)
        print(
            f"  ConfirmHold answered -> booking visible: p50 {p.p50_ms:.1f}  p95 {p.p95_ms:.1f}  "
            f"p99 {p.p99_ms:.1f}  max {p.max_ms:.1f} ms  (target p99 < {LAG_P99_TARGET_MS:g} ms: "
            f"{met(figures['target_met'])})\n"
            f"  polls per round p50 {figures['polls_p50']}; the call that saw it "
            f"(a miss) took p50 {figures['seen_call_p50_ms']:.2f} ms"
        )
    for name, count in lag.poll_errors.items():
        print(f"  poll errors {name}: {count}")
    for wrong in lag.wrong:
        print(f"  WRONG: {wrong}")
    if lag.service:
        s = lag.service
        p99 = f"<= {s.p99_bucket_ms:g} ms" if s.p99_bucket_ms is not None else "-"
        print(
            f"  service side (commit -> applied, {s.count} messages: the holds' and the "
            f"confirms'): mean {s.mean_ms:.2f} ms, p99 {p99}"
        )
    print()
    return figures


def _figures(
    options: Options, tenant: str, results: Results, figures: dict[str, Any]
) -> dict[str, Any]:
    def answered_by(measured: Measured) -> dict[str, int] | None:
        return cache_levels(measured.service) if options.availability_metrics else None

    def phase(measured: Measured, answered: dict[str, int] | None = None) -> dict[str, Any]:
        per_call = measured.server_cpu_ms_per_call
        return phase_figures(measured.phase, answered) | {
            "server_cpu_ms_per_call": None if per_call is None else round(per_call, 4)
        }

    return {
        "bench": "availability",
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "availability_target": options.availability_target,
        "booking_target": options.booking_target,
        "tenant": tenant,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "options": asdict(options),
        "answer_bytes": results.answer_bytes,
        "hits": phase(results.hits, answered_by(results.hits)),
        "bare_grpc": phase(results.bare),
        "misses": phase(results.misses, answered_by(results.misses)),
        "hits_over_bare": round(results.ratio, 3),
        "targets": {
            "hit_p99_ms": HIT_P99_TARGET_MS,
            "hit_p99_met": results.hit_p99_ms < HIT_P99_TARGET_MS,
            "ratio": HIT_RATIO_TARGET,
            "ratio_met": results.ratio >= HIT_RATIO_TARGET,
            "lag_p99_ms": LAG_P99_TARGET_MS,
            "lag_p99_met": figures["target_met"],
        },
        "lag": figures,
        "wrong_answers": results.wrong,
    }
