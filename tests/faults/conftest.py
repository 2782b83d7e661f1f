"""Fault tests: the system as separate processes (tests.support.stack), real
Postgres and Redis, and one fault at a time (a process killed, the database
stopped, Stripe slow or gone) under concurrent load through the gateway.

Each test runs its whole scenario under a hard time limit, so a hang fails
the test instead of stalling the run. Recovery times are printed, and listed
again at the end of the run (they are figures to watch, not assertions).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

FIGURES = pytest.StashKey[list[str]]()


@pytest.fixture
def report_figure(request: pytest.FixtureRequest) -> Callable[[str, float], None]:
    """Records a figure (seconds) of the running test for the run's summary."""
    figures = request.config.stash.setdefault(FIGURES, [])

    def report(what: str, seconds: float) -> None:
        line = f"{request.node.name}: {what}: {seconds:.2f} s"
        figures.append(line)
        print(line)

    return report


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    figures = config.stash.get(FIGURES, [])
    if figures:
        terminalreporter.section("fault recovery figures")
        for line in figures:
            terminalreporter.write_line(line)
