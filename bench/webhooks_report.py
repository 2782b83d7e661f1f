"""What `bench.webhooks` prints: the acknowledgement and end-to-end tables,
the duplicates, and the one JSON line for machines."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from bench.grpc_load import (
    OK,
    Phase,
    phase_figures,
)
from bench.report import met
from bench.stats import Latencies
from bench.webhook_delivery import EVENT_TYPE
from bench.webhook_rounds import Side
from bench.webhooks_options import Options
from bench.webhooks_results import Results

ACK_P99_TARGET_MS = 50.0


def _figures(phase: Phase) -> dict[str, Any]:
    figures = phase_figures(phase)
    del figures["rounds_per_s"]  # one round each here
    return figures


def _line(seconds: Sequence[float]) -> str:
    p = Latencies.of(seconds)
    return f"p50 {p.p50_ms:.1f}  p95 {p.p95_ms:.1f}  p99 {p.p99_ms:.1f}  max {p.max_ms:.1f} ms"


def _shares(shares: dict[str, float | None]) -> str:
    return "  ".join(
        f"{label} {share:.0%}" if share is not None else f"{label} ?"
        for label, share in shares.items()
    )


def report(options: Options, tenant: str, server_version: str, r: Results) -> dict[str, Any]:
    non_200 = {k: v for k, v in sorted(r.ack.outcomes.items()) if k != OK}
    _print_setup(options, tenant, server_version, r)
    _print_ack(r, non_200)
    _print_confirmed(options, r)
    _print_duplicates(options, r)
    _print_holds(options, r)
    return _json(options, tenant, server_version, r, non_200)


def _print_setup(options: Options, tenant: str, server_version: str, r: Results) -> None:
    print(
        f"holdfast webhook benchmark  webhooks={options.webhooks_url}  "
        f"booking={options.booking_target}  tenant={tenant}\n"
        f"  {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"PostgreSQL {server_version}, httpx at concurrency {options.concurrency}\n"
        f"  {options.events} {EVENT_TYPE} events (+{options.warmup} warm-up), one per hold, "
        f"{r.body_bytes} bytes each, signed at send time\n"
        f"  clock: Postgres minus client {r.clock.offset * 1000:+.2f} ms "
        f"(+/- {r.clock.uncertainty * 1000:.2f} ms), taken off\n"
    )


def _print_ack(r: Results, non_200: dict[str, int]) -> None:
    ack = r.ack
    ack_cpu = ack.client_cpu_seconds / ack.wall_seconds if ack.wall_seconds else 0.0
    print(
        f"acknowledgement: {len(ack.latencies)} deliveries in {ack.wall_seconds:.2f} s: "
        f"{ack.throughput:.0f} acks/s, client cpu {ack_cpu:.0%}\n"
        f"  send -> HTTP answer: {_line(ack.latencies)}\n"
        f"  non-200: {sum(non_200.values())}"
        + (" (" + ", ".join(f"{k} {v}" for k, v in non_200.items()) + ")" if non_200 else "")
        + (f"; {r.redelivered} sent again afterwards" if r.redelivered else "")
    )
    for outcome, detail in r.failures.items():
        print(f"    {outcome}: {detail}")
    if r.service_ack:
        s = r.service_ack["ack"]
        print(f"  service side (its ack histogram): {s['count']} answers, mean {s['mean_ms']} ms")
    _print_ceiling(r)
    print(f"  target p99 < {ACK_P99_TARGET_MS:g} ms: {met(r.ack_p99_ms < ACK_P99_TARGET_MS)}\n")


def _cpu(side: Side) -> str:
    per = side.cpu_ms_per_delivery
    return f", cpu {per:.2f} ms/delivery" if per is not None else ""


def _print_ceiling(r: Results) -> None:
    """The receiver next to its ceiling, over the same alternating rounds."""
    service, top = r.service_side, r.ceiling
    print(
        f"  receiver, {len(service.phase.rounds)} rounds: {service.phase.throughput:.0f} acks/s"
        f"{_cpu(service)}"
    )
    if top is None:
        return
    ratios = _ceiling_ratios(r)
    print(
        f"  ceiling (bare verify-and-answer app, own process, same rounds alternating):\n"
        f"    {_line(top.phase.latencies)}; {top.phase.throughput:.0f} acks/s{_cpu(top)}\n"
        f"  ratio to the ceiling: acks/s {ratios['throughput']}, "
        f"p99 x{ratios['p99_times']} the ceiling's"
    )


def _ceiling_ratios(r: Results) -> dict[str, float | None]:
    top = r.ceiling
    if top is None or not top.phase.throughput:
        return {"throughput": None, "p99_times": None}
    ceiling_p99 = Latencies.of(top.phase.latencies).p99_ms
    return {
        "throughput": round(r.ack.throughput / top.phase.throughput, 3),
        "p99_times": round(r.ack_p99_ms / ceiling_p99, 2) if ceiling_p99 else None,
    }


def _print_confirmed(options: Options, r: Results) -> None:
    t = r.timings
    confirmed = len(t.to_confirmed)
    print(
        f"delivery -> confirmed: {confirmed} of {options.events} events, first send -> the "
        f"booking's confirm transaction (audit row), from Postgres"
    )
    if confirmed:
        print(
            f"  {_line(t.to_confirmed)}\n"
            f"    send -> stored (received_at)          {_line(t.to_stored)}\n"
            f"    stored -> claimed (processed_at)      {_line(t.queued)}\n"
            f"    claimed -> confirmed (ApplyPayment)   {_line(t.applying)}\n"
            f"  the last confirmed {t.span:.2f} s after the first send "
            f"({confirmed / t.span:.0f} confirmations/s): {t.confirmed_while_delivering} while "
            f"deliveries came ({t.rates[0]:.0f}/s), the rest in the "
            f"{t.last_confirmed - t.last_answered:.2f} s after the last answer "
            f"({t.rates[1]:.0f}/s)"
            + ("" if r.drained else f" -- NOT all within {options.drain_timeout:g} s")
        )
    print(
        "  events: "
        + ", ".join(f"{k} {v}" for k, v in sorted(r.event_statuses.items()))
        + f"; applied after a retry: {r.retried_events}"
    )
    if r.service_until_confirmed:
        s = r.service_until_confirmed
        print(
            f"  service side: {s['processing']['count']} attempts, mean "
            f"{s['processing']['mean_ms']} ms each; retries {s['retries']}, "
            f"dead letters {s['dead_letters']}"
        )
    if r.cpu_until_confirmed:
        print(f"  cpu until confirmed (share of one core): {_shares(r.cpu_until_confirmed)}")
    print()


def _print_duplicates(options: Options, r: Results) -> None:
    dup = r.duplicates
    if not dup.latencies:
        print("duplicates: none sent (--duplicate-events 0)")
    else:
        answers = ", ".join(
            f"{'200 duplicate' if k == OK else k} {v}"
            for k, v in sorted(r.duplicate_answers.items())
        )
        print(
            f"duplicates: {len(dup.latencies) // options.duplicate_copies} events "
            f"x {options.duplicate_copies} copies at once, concurrency {options.concurrency}\n"
            f"  answers: {answers}\n"
            f"  send -> HTTP answer: {_line(dup.latencies)}"
        )
    for outcome, detail in r.duplicate_failures.items():
        print(f"    {outcome}: {detail}")
    for problem in r.duplicate_problems:
        print(f"  WRONG: {problem}")
    print()


def _print_holds(options: Options, r: Results) -> None:
    holds = options.events + options.warmup
    print(
        f"every one of {holds} holds CONFIRMED exactly once by its event's payment, "
        f"before and after the duplicates: {'PASS' if r.passed else 'FAIL'}"
    )
    for problem in r.problems[:20]:
        print(f"  WRONG: {problem}")
    if len(r.problems) > 20:
        print(f"  ... and {len(r.problems) - 20} more")
    print()


def _json(
    options: Options, tenant: str, server_version: str, r: Results, non_200: dict[str, int]
) -> dict[str, Any]:
    """Every figure, for machines."""
    ack, t, dup = r.ack, r.timings, r.duplicates
    confirmed = len(t.to_confirmed)
    holds = options.events + options.warmup
    return {
        "bench": "webhooks",
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "webhooks_url": options.webhooks_url,
        "booking_target": options.booking_target,
        "tenant": tenant,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "postgres": server_version,
        },
        "options": asdict(options)
        | {"database_url": None, "secret": None, "pids": sorted(options.pids)},
        "body_bytes": r.body_bytes,
        "clock_offset_ms": round(r.clock.offset * 1000, 3),
        "clock_uncertainty_ms": round(r.clock.uncertainty * 1000, 3),
        "ack": {
            **_figures(ack),
            "non_200": sum(non_200.values()),
            "redelivered": r.redelivered,
            "failures": r.failures,
            "target_p99_ms": ACK_P99_TARGET_MS,
            "target_met": r.ack_p99_ms < ACK_P99_TARGET_MS,
            "service": r.service_ack,
            "cpu": r.cpu_ack or None,
            "cpu_ms_per_delivery": r.service_side.cpu_ms_per_delivery,
            "ceiling": None
            if r.ceiling is None
            else {
                **_figures(r.ceiling.phase),
                "cpu_ms_per_delivery": r.ceiling.cpu_ms_per_delivery,
            },
            "ratio_to_ceiling": _ceiling_ratios(r),
        },
        "confirmed": {
            **t.figures(),
            "events": confirmed,
            "drained": r.drained,
            "drain_after_last_ack_s": round(r.drain_seconds, 3),
            "event_statuses": dict(sorted(r.event_statuses.items())),
            "applied_after_retry": r.retried_events,
            "service": r.service_until_confirmed,
            "cpu": r.cpu_until_confirmed or None,
        },
        "duplicates": {
            **_figures(dup),
            "events": len(dup.latencies) // max(1, options.duplicate_copies),
            "copies": options.duplicate_copies,
            "answers": dict(sorted(r.duplicate_answers.items())),
            "failures": r.duplicate_failures,
            "problems": r.duplicate_problems,
            "passed": not r.duplicate_problems,
        },
        "holds": holds,
        "problems": r.problems[:100],
        "passed": r.passed,
    }
