"""pgbench running a hold's SQL against the service's database: the ceiling
the service's holds are measured against, in the same run and on the same
machine. bench/windows_hold.sql is a window hold's (bench.windows),
bench/slot_hold.sql a slot hold's (bench.holds).

Each transaction's latency comes from pgbench's own per-transaction log, so
its percentiles read like the service's.
"""

from __future__ import annotations

import asyncio
import glob
import os
import re
import resource
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.grpc_load import OK, Phase

WINDOW_HOLD_SCRIPT = Path(__file__).with_name("windows_hold.sql")
SLOT_HOLD_SCRIPT = Path(__file__).with_name("slot_hold.sql")
# Where Debian puts it when it is not on PATH.
_FALLBACKS = "/usr/lib/postgresql/*/bin/pgbench"
_TPS = re.compile(r"^tps = ([0-9.]+) \(without initial connection time\)", re.M)
_FAILED = re.compile(r"^number of failed transactions: (\d+)", re.M)


class PgbenchError(RuntimeError):
    """pgbench could not run the script to the end (its output says why)."""


@dataclass(frozen=True)
class Pgbench:
    path: str
    database_url: str
    clients: int
    threads: int
    script: Path = WINDOW_HOLD_SCRIPT

    @classmethod
    def find(
        cls,
        database_url: str,
        clients: int,
        threads: int,
        path: str | None,
        script: Path = WINDOW_HOLD_SCRIPT,
    ) -> Pgbench:
        found = path or shutil.which("pgbench") or next(iter(sorted(glob.glob(_FALLBACKS))), None)
        if not found:
            raise PgbenchError("no pgbench on PATH nor in /usr/lib/postgresql/*/bin; --pgbench")
        return cls(found, database_url, clients, min(threads, clients), script)

    async def run(self, label: str, seconds: float, variables: Mapping[str, str]) -> Phase:
        """Runs the script for `seconds` on `self.clients` connections; the
        phase counts transactions as holds (none may fail)."""
        with tempfile.TemporaryDirectory(prefix="holdfast-pgbench-") as folder:
            prefix = os.path.join(folder, "tx")
            defines = [
                arg for name, value in variables.items() for arg in ("-D", f"{name}={value}")
            ]
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            process = await asyncio.create_subprocess_exec(
                self.path,
                "--no-vacuum",
                "--protocol=prepared",
                f"--client={self.clients}",
                f"--jobs={self.threads}",
                f"--time={max(1, round(seconds))}",
                f"--file={self.script}",
                "--log",
                f"--log-prefix={prefix}",
                *defines,
                self.database_url,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            out_bytes, _ = await process.communicate()
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            output = out_bytes.decode(errors="replace")
            latencies, failed = _read_logs(glob.glob(prefix + ".*"))
        tps = _TPS.search(output)
        reported_failed = _FAILED.search(output)
        if process.returncode != 0 or tps is None or "aborted" in output:
            raise PgbenchError(f"pgbench exited with {process.returncode}:\n{output[-2000:]}")
        phase = Phase(label, latencies=latencies)
        phase.outcomes[OK] = len(latencies)
        failures = max(failed, int(reported_failed.group(1)) if reported_failed else 0)
        if failures:
            phase.outcomes["pgbench/failed"] = failures
        rate = float(tps.group(1))
        phase.wall_seconds = len(latencies) / rate if rate else 0.0
        phase.client_cpu_seconds = (after.ru_utime - before.ru_utime) + (
            after.ru_stime - before.ru_stime
        )
        phase.rounds = [round(rate, 1)]
        return phase


def _read_logs(paths: list[str]) -> tuple[list[float], int]:
    """Latencies in seconds of the logged transactions, and how many failed.

    A log line is `client transaction latency_us script epoch_s epoch_us`;
    a failed transaction has `failed` (or `serialization`/`deadlock`) for
    its latency.
    """
    latencies: list[float] = []
    failed = 0
    for path in paths:
        with open(path, encoding="ascii") as log:
            for line in log:
                fields = line.split()
                if len(fields) < 3:
                    continue
                if fields[2].isdigit():
                    latencies.append(int(fields[2]) / 1e6)
                else:
                    failed += 1
    return latencies, failed
