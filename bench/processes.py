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


def listening_pids(port: int) -> list[int]:
    """The processes with a socket listening on TCP `port` (this machine's,
    from /proc/net/tcp{,6} and each process's fds): whose CPU a bench
    against a local service reads. Empty when none can be seen."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as lines:
                for line in list(lines)[1:]:
                    fields = line.split()
                    # local address HEX:PORT, state 0A is LISTEN, inode is field 10.
                    if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                        inodes.add(fields[9])
        except OSError:
            continue
    pids: list[int] = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            links = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in fds}
        except OSError:
            continue
        if any(f"socket:[{inode}]" in links for inode in inodes):
            pids.append(int(pid))
    return sorted(pids)
