"""Other processes' CPU, from /proc: what the services used while a
benchmark ran (--pid LABEL=PID[,PID...])."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence


def cpu_seconds(pids: Sequence[int]) -> float | None:
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / os.sysconf("SC_CLK_TCK")


class CpuWatch:
    """CPU seconds of named processes (--pid LABEL=PID[,PID...]) over stretches."""

    def __init__(self, pids: dict[str, list[int]]) -> None:
        self.pids = pids
        self._marks: dict[str, tuple[float, dict[str, float | None]]] = {}

    def mark(self, name: str) -> None:
        cpu = {label: cpu_seconds(p) for label, p in self.pids.items()}
        self._marks[name] = (time.perf_counter(), cpu)

    def between(self, start: str, end: str) -> dict[str, float | None]:
        """Each process's share of one core from mark `start` to `end`."""
        (t0, a), (t1, b) = self._marks[start], self._marks[end]
        shares: dict[str, float | None] = {}
        for label in self.pids:
            used, before = b[label], a[label]
            if used is None or before is None or t1 <= t0:
                shares[label] = None
            else:
                shares[label] = round((used - before) / (t1 - t0), 3)
        return shares


def machine_jiffies() -> tuple[int, int] | None:
    """(busy, all) CPU time of the whole machine so far, in clock ticks (/proc/stat)."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle, iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


def listening_pid(port: int) -> int | None:
    """The process listening on TCP `port` of this machine, if it can be
    seen (/proc/net/tcp, then each process's open sockets)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as rows:
                for row in list(rows)[1:]:
                    fields = row.split()
                    if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(f"socket:[{fields[9]}]")
        except OSError:
            continue
    if not inodes:
        return None
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{entry}/fd"):
                if os.readlink(f"/proc/{entry}/fd/{fd}") in inodes:
                    return int(entry)
        except OSError:
            continue
    return None
