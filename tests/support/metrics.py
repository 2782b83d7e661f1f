"""Reading a service's own metrics in tests."""

from __future__ import annotations

from typing import Protocol

import httpx
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

# A scrape: (sample name, its labels) -> value.
Scrape = dict[tuple[str, frozenset[tuple[str, str]]], float]


class HasMetrics(Protocol):
    @property
    def registry(self) -> CollectorRegistry: ...


class App(Protocol):
    @property
    def metrics(self) -> HasMetrics: ...


def sample(app: App, name: str, **labels: str) -> float:
    """One sample's value in the app's registry; 0 if it was never touched."""
    return app.metrics.registry.get_sample_value(name, labels) or 0.0


async def scrape(url: str) -> Scrape:
    """Every sample a /metrics endpoint serves right now."""
    async with httpx.AsyncClient(timeout=5) as http:
        response = await http.get(url)
    response.raise_for_status()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def scraped(samples: Scrape, name: str, **labels: str) -> float:
    """The sum of the samples named `name` whose labels include `labels`; 0 if none."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)
