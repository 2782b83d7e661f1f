"""Reading a service's own metrics in tests."""

from __future__ import annotations

from typing import Protocol

from prometheus_client import CollectorRegistry


class HasMetrics(Protocol):
    @property
    def registry(self) -> CollectorRegistry: ...


class App(Protocol):
    @property
    def metrics(self) -> HasMetrics: ...


def sample(app: App, name: str, **labels: str) -> float:
    """One sample's value in the app's registry; 0 if it was never touched."""
    return app.metrics.registry.get_sample_value(name, labels) or 0.0
