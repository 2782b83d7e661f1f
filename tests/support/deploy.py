"""Reading deploy/ for the deploy checks (tests/unit/deploy/): the YAML files,
the Kubernetes base and components, the compose file, and the holdfast
processes as the code defines them (holdfast.registry and the ports their
settings default to)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic_settings import BaseSettings

from devtools.plan import default_port, settings_class
from holdfast import registry as service_registry
from holdfast.registry import ServiceEntry

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
BASE = KUBERNETES / "base"
COMPONENTS = KUBERNETES / "components"
OTLP_GRPC_PORT = 4317
PART_OF = {"app.kubernetes.io/part-of": "holdfast"}

Doc = dict[str, Any]


@dataclass(frozen=True)
class Service:
    """One holdfast process as the code defines it (holdfast.registry, with
    the ports its settings default to)."""

    name: str
    module: str
    settings: type[BaseSettings]
    # gRPC port (health checked over grpc.health.v1), None for the gateway.
    grpc_port: int | None
    http_ports: tuple[int, ...]
    metrics_port: int
    # The grpc.health.v1 entry that says "ready" (NOT_SERVING while the
    # service cannot work); "" says "alive". None for the gateway.
    ready_health: str | None = None

    @property
    def ports(self) -> set[int]:
        grpc = {self.grpc_port} if self.grpc_port is not None else set()
        return grpc | set(self.http_ports) | {self.metrics_port}


def _service(entry: ServiceEntry) -> Service:
    grpc = default_port(entry, entry.grpc_port) if entry.grpc_port else None
    http = (default_port(entry, entry.http_port),) if entry.http_port else ()
    # The gateway serves /metrics, /healthz and /readyz on its API port.
    metrics_setting = entry.metrics_port or entry.http_port
    assert metrics_setting is not None, f"{entry.name} serves no /metrics"
    metrics = default_port(entry, metrics_setting)
    return Service(
        entry.name, entry.module, settings_class(entry), grpc, http, metrics, entry.ready_health
    )


SERVICES = tuple(_service(entry) for entry in service_registry.SERVICES)
BY_NAME = {service.name: service for service in SERVICES}
# Who calls whose gRPC API (HOLDFAST_<callee>_TARGET).
GRPC_FLOWS = tuple(
    (entry.name, callee) for entry in service_registry.SERVICES for callee in entry.calls
)


# --- reading deploy/ ------------------------------------------------------------


def load_all(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def objects_in(path: Path) -> list[Doc]:
    """The Kubernetes objects in a file (a JSON patch file is a list of operations)."""
    return [doc for doc in load_all(path) if isinstance(doc, dict) and "kind" in doc]


def load(path: Path) -> Doc:
    docs = load_all(path)
    assert len(docs) == 1, f"{path}: expected one document, found {len(docs)}"
    doc = docs[0]
    assert isinstance(doc, dict), f"{path}: expected a mapping"
    return doc


def yaml_files() -> list[Path]:
    return sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])


def kustomizations() -> list[Path]:
    return sorted(KUBERNETES.rglob("kustomization.yaml"))


def manifests(folder: Path) -> list[Doc]:
    """The objects of the files `folder`'s kustomization lists as resources."""
    kustomization = load(folder / "kustomization.yaml")
    docs: list[Doc] = []
    for resource in kustomization.get("resources", []):
        docs.extend(objects_in(folder / resource))
    return docs


@cache
def base_objects() -> tuple[Doc, ...]:
    return tuple(manifests(BASE))


def objects(kind: str, docs: tuple[Doc, ...] | list[Doc] | None = None) -> list[Doc]:
    return [doc for doc in (base_objects() if docs is None else docs) if doc["kind"] == kind]


def named(kind: str, name: str, docs: list[Doc] | None = None) -> Doc:
    found = [doc for doc in objects(kind, docs) if doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} named {name}, found {len(found)}"
    return found[0]


def only_container(workload: Doc) -> Doc:
    containers: list[Doc] = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, f"{workload['metadata']['name']}: one container expected"
    return containers[0]


def container_ports(container: Doc) -> dict[str, int]:
    return {port["name"]: port["containerPort"] for port in container.get("ports", [])}


def env_names(container: Doc) -> list[str]:
    return [entry["name"] for entry in container.get("env", [])]


@cache
def compose() -> Doc:
    return load(DEPLOY / "compose.yaml")


def compose_service(name: str) -> Doc:
    services: dict[str, Doc] = compose()["services"]
    assert name in services, f"compose has no service {name}"
    return services[name]


def compose_env(name: str) -> dict[str, str]:
    return {key: str(value) for key, value in compose_service(name).get("environment", {}).items()}


def compose_container_ports(service: Doc) -> set[int]:
    """Ports inside the container: `expose`, and the container side of `ports`."""
    exposed = {int(port) for port in service.get("expose", [])}
    published = {int(str(mapping).rsplit(":", 1)[-1]) for mapping in service.get("ports", [])}
    return exposed | published


def settings_env_names(settings: type[BaseSettings]) -> set[str]:
    prefix = str(settings.model_config.get("env_prefix", ""))
    return {(prefix + field).upper() for field in settings.model_fields}


def image_is_pinned(image: str) -> bool:
    """A tag that is not `latest` (a digest alone pins too)."""
    if "@sha256:" in image:
        return True
    last = image.rsplit("/", 1)[-1]
    return ":" in last and last.split(":", 1)[1] not in ("", "latest")


def label_selector(text: str) -> dict[str, str]:
    """`a=b,c=d` (equality terms only, which is all deploy/ uses)."""
    return dict(term.split("=", 1) for term in text.split(","))


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())
