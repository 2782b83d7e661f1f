"""The Prometheus configuration against the code: every service's metrics port
is scraped, the alert rules compose mounts are loaded, and the alert rules
name metrics the services register and have a runbook entry."""

from __future__ import annotations

import re
from functools import cache

from prometheus_client import CollectorRegistry

from gateway.config import GatewaySettings
from gateway.server import GatewayApp
from services.availability.config import AvailabilitySettings
from services.availability.server import AvailabilityApp
from services.booking.config import BookingSettings
from services.booking.server import BookingApp
from services.webhooks.config import WebhooksSettings
from services.webhooks.server import WebhooksApp
from tests.support.deploy import (
    BY_NAME,
    DEPLOY,
    ROOT,
    SERVICES,
    Doc,
    compose_container_ports,
    compose_service,
    load,
)


def _service_registries() -> list[CollectorRegistry]:
    """Every service's registry as its server builds it (the pool gauges
    included). Building an app opens no connection."""
    urls = {"database_url": "postgresql://deploy-test/holdfast", "redis_url": "redis://deploy-test"}
    secrets = "whsec_deploy_test"
    return [
        BookingApp(BookingSettings.model_validate(urls)).metrics.registry,
        AvailabilityApp(AvailabilitySettings.model_validate(urls)).metrics.registry,
        WebhooksApp(
            WebhooksSettings.model_validate({**urls, "stripe_webhook_secrets": secrets})
        ).metrics.registry,
        GatewayApp(GatewaySettings.model_validate(urls)).metrics.registry,
    ]


@cache
def _prometheus() -> Doc:
    return load(DEPLOY / "prometheus" / "prometheus.yml")


def test_prometheus_scrapes_every_service_s_metrics_port() -> None:
    targets = {
        target
        for job in _prometheus()["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    for service in SERVICES:
        assert f"{service.name}:{service.metrics_port}" in targets
        assert service.metrics_port in compose_container_ports(compose_service(service.name))


def test_prometheus_loads_the_alert_rules_compose_mounts() -> None:
    volumes = compose_service("prometheus")["volumes"]
    mounted = {v.split(":")[1]: DEPLOY / v.split(":")[0] for v in volumes}
    for rule_file in _prometheus()["rule_files"]:
        assert mounted[rule_file].resolve() == (DEPLOY / "prometheus" / "alerts.yaml").resolve()
    config = f"--config.file={next(p for p, f in mounted.items() if f.name == 'prometheus.yml')}"
    assert config in compose_service("prometheus")["command"]


def _exposed_names(registry: CollectorRegistry) -> set[str]:
    """The sample names Prometheus sees: counters with _total, histograms with
    _bucket/_sum/_count, whether or not a sample has been recorded yet."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
        "gauge": ("",),
        "info": ("_info",),
    }
    return {
        family.name + suffix for family in registry.collect() for suffix in suffixes[family.type]
    }


@cache
def _registered_metric_names() -> frozenset[str]:
    names: set[str] = set()
    for registry in _service_registries():
        names |= _exposed_names(registry)
    return frozenset(names)


def _alert_rules() -> list[Doc]:
    groups = load(DEPLOY / "prometheus" / "alerts.yaml")["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_exposed_names_follow_prometheus_client() -> None:
    names = _registered_metric_names()
    assert "holdfast_grpc_requests_total" in names
    assert "holdfast_grpc_requests" not in names
    assert "holdfast_grpc_request_duration_seconds_bucket" in names


def test_alert_rules_use_metrics_the_services_register() -> None:
    rules = _alert_rules()
    used: set[str] = set()
    for rule in rules:
        names = set(re.findall(r"\bholdfast_[a-z0-9_]+\b", rule["expr"]))
        unknown = names - _registered_metric_names()
        assert not unknown, f"{rule['alert']}: {sorted(unknown)} are not registered"
        used |= names
    assert len(used) >= 10


def test_the_target_down_alert_watches_every_scrape_job_of_a_service() -> None:
    jobs = {job["job_name"]: job for job in _prometheus()["scrape_configs"]}
    (rule,) = [r for r in _alert_rules() if r["expr"].lstrip().startswith("up{")]
    watched = re.search(r'job=~"([^"]+)"', rule["expr"])
    assert watched is not None
    assert set(watched.group(1).split("|")) == set(BY_NAME)
    assert set(BY_NAME) <= set(jobs)


def test_alert_rules_are_labelled_and_have_a_runbook_entry() -> None:
    headings = {
        line.lstrip("#").strip()
        for line in (ROOT / "docs" / "operations.md").read_text().splitlines()
        if line.startswith("#")
    }
    for rule in _alert_rules():
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["runbook"] in headings, rule["alert"]
