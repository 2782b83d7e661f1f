"""deploy/ holds together: every YAML file parses, every file a kustomization
names is there, no Secret is committed, and the registry names the health
entries the servers serve. `kubectl kustomize` is run when kubectl is
installed; nothing is started."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from gateway.config import GatewaySettings
from services.availability.config import AvailabilitySettings
from services.availability.server import SERVICE_NAME as AVAILABILITY_SERVICE
from services.booking.config import BookingSettings
from services.booking.server import SERVICE_NAMES as BOOKING_SERVICES
from services.webhooks.config import WebhooksSettings
from services.webhooks.server import SERVICE_NAME as WEBHOOKS_SERVICE
from tests.support.deploy import (
    BASE,
    BY_NAME,
    COMPONENTS,
    KUBERNETES,
    SERVICES,
    env_names,
    kustomizations,
    load,
    load_all,
    objects,
    objects_in,
    only_container,
    yaml_files,
)


def test_the_registry_names_the_health_entries_the_servers_serve() -> None:
    assert BY_NAME["booking"].ready_health == BOOKING_SERVICES[0]
    assert BY_NAME["availability"].ready_health == AVAILABILITY_SERVICE
    assert BY_NAME["webhooks"].ready_health == WEBHOOKS_SERVICE
    assert {s.name: s.settings for s in SERVICES} == {
        "booking": BookingSettings,
        "availability": AvailabilitySettings,
        "webhooks": WebhooksSettings,
        "gateway": GatewaySettings,
    }


def test_every_yaml_file_under_deploy_parses() -> None:
    files = yaml_files()
    assert len(files) > 10
    for path in files:
        assert load_all(path), f"{path} is empty"


@pytest.mark.parametrize(
    "path", kustomizations(), ids=lambda p: str(p.parent.relative_to(KUBERNETES))
)
def test_kustomization_names_files_that_exist(path: Path) -> None:
    kustomization = load(path)
    folder = path.parent
    for resource in kustomization.get("resources", []):
        target = folder / resource
        assert target.is_file() or (target / "kustomization.yaml").is_file(), resource
    for component in kustomization.get("components", []):
        assert load(folder / component / "kustomization.yaml")["kind"] == "Component"
    for patch in kustomization.get("patches", []):
        assert (folder / patch["path"]).is_file(), patch["path"]


def test_the_example_overlay_uses_the_base_and_every_component() -> None:
    overlay = load(KUBERNETES / "overlays" / "example" / "kustomization.yaml")
    used = {(KUBERNETES / "overlays" / "example" / c).resolve() for c in overlay["components"]}
    assert used == {path.resolve() for path in COMPONENTS.iterdir() if path.is_dir()}
    assert [(KUBERNETES / "overlays" / "example" / r).resolve() for r in overlay["resources"]] == [
        BASE.resolve()
    ]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_renders_the_example_overlay() -> None:
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(KUBERNETES / "overlays" / "example")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert rendered.returncode == 0, rendered.stderr
    docs = [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]
    kinds = {doc["kind"] for doc in docs}
    assert {"Deployment", "HorizontalPodAutoscaler", "NetworkPolicy"} <= kinds
    for deployment in objects("Deployment", docs):
        env = env_names(only_container(deployment))
        assert "OTEL_EXPORTER_OTLP_ENDPOINT" in env
        # The autoscaler, not a re-apply, owns the replica count.
        assert "replicas" not in deployment["spec"]


def test_no_secret_values_are_committed() -> None:
    for path in yaml_files():
        for doc in objects_in(path):
            assert doc["kind"] != "Secret", f"{path} holds a Secret"
