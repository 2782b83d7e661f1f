"""Test helpers live in tests/support: a conftest holds fixtures and is never
imported (pytest loads it; an import would load a second copy)."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
IMPORTS_A_CONFTEST = re.compile(r"^\s*(from|import)\s+[\w.]*conftest\b", re.MULTILINE)


def test_no_module_imports_a_conftest() -> None:
    importers = [
        str(path.relative_to(TESTS))
        for path in TESTS.rglob("*.py")
        if IMPORTS_A_CONFTEST.search(path.read_text())
    ]
    assert importers == []
