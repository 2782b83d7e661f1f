"""What the benchmarks' reports share: how a target reads."""

from __future__ import annotations


def met(ok: bool) -> str:
    """A performance target: reported, not failed."""
    return "met" if ok else "NOT met"
