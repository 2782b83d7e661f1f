"""deploy/ holds together, and with the code it deploys.

The compose file, the Kubernetes manifests, the Prometheus configuration and
the Dockerfile are checked against what the code really does: the ports are
the settings' defaults, the environment variables are settings that exist,
the alert rules name metrics the services register, and every file a
kustomization names is there. Nothing is started; `kubectl kustomize` is run
when kubectl is installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from prometheus_client import CollectorRegistry
from pydantic_settings import BaseSettings

from devtools.fakestripe.config import FakeStripeSettings
from devtools.plan import WEBHOOK_PATH, default_port, settings_class
from gateway.config import GatewaySettings
from gateway.server import GatewayApp
from holdfast import registry as service_registry
from holdfast.registry import ServiceEntry
from services.availability.config import AvailabilitySettings
from services.availability.server import SERVICE_NAME as AVAILABILITY_SERVICE
from services.availability.server import AvailabilityApp
from services.booking.config import BookingSettings
from services.booking.server import SERVICE_NAMES as BOOKING_SERVICES
from services.booking.server import BookingApp
from services.webhooks.config import WebhooksSettings
from services.webhooks.server import SERVICE_NAME as WEBHOOKS_SERVICE
from services.webhooks.server import WebhooksApp

ROOT = Path(__file__).resolve().parents[3]
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


# --- reading deploy/ ------------------------------------------------------------


def _load_all(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _objects_in(path: Path) -> list[Doc]:
    """The Kubernetes objects in a file (a JSON patch file is a list of operations)."""
    return [doc for doc in _load_all(path) if isinstance(doc, dict) and "kind" in doc]


def _load(path: Path) -> Doc:
    docs = _load_all(path)
    assert len(docs) == 1, f"{path}: expected one document, found {len(docs)}"
    doc = docs[0]
    assert isinstance(doc, dict), f"{path}: expected a mapping"
    return doc


def _yaml_files() -> list[Path]:
    return sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])


def _kustomizations() -> list[Path]:
    return sorted(KUBERNETES.rglob("kustomization.yaml"))


def _manifests(folder: Path) -> list[Doc]:
    """The objects of the files `folder`'s kustomization lists as resources."""
    kustomization = _load(folder / "kustomization.yaml")
    docs: list[Doc] = []
    for resource in kustomization.get("resources", []):
        docs.extend(_objects_in(folder / resource))
    return docs


@cache
def _base() -> tuple[Doc, ...]:
    return tuple(_manifests(BASE))


def _objects(kind: str, docs: tuple[Doc, ...] | list[Doc] | None = None) -> list[Doc]:
    return [doc for doc in (_base() if docs is None else docs) if doc["kind"] == kind]


def _named(kind: str, name: str, docs: list[Doc] | None = None) -> Doc:
    found = [doc for doc in _objects(kind, docs) if doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} named {name}, found {len(found)}"
    return found[0]


def _container(workload: Doc) -> Doc:
    containers: list[Doc] = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, f"{workload['metadata']['name']}: one container expected"
    return containers[0]


def _container_ports(container: Doc) -> dict[str, int]:
    return {port["name"]: port["containerPort"] for port in container.get("ports", [])}


def _env_names(container: Doc) -> list[str]:
    return [entry["name"] for entry in container.get("env", [])]


@cache
def _compose() -> Doc:
    return _load(DEPLOY / "compose.yaml")


def _compose_service(name: str) -> Doc:
    services: dict[str, Doc] = _compose()["services"]
    assert name in services, f"compose has no service {name}"
    return services[name]


def _compose_env(name: str) -> dict[str, str]:
    return {key: str(value) for key, value in _compose_service(name).get("environment", {}).items()}


def _compose_container_ports(service: Doc) -> set[int]:
    """Ports inside the container: `expose`, and the container side of `ports`."""
    exposed = {int(port) for port in service.get("expose", [])}
    published = {int(str(mapping).rsplit(":", 1)[-1]) for mapping in service.get("ports", [])}
    return exposed | published


def _settings_env_names(settings: type[BaseSettings]) -> set[str]:
    prefix = str(settings.model_config.get("env_prefix", ""))
    return {(prefix + field).upper() for field in settings.model_fields}


def _image_is_pinned(image: str) -> bool:
    """A tag that is not `latest` (a digest alone pins too)."""
    if "@sha256:" in image:
        return True
    last = image.rsplit("/", 1)[-1]
    return ":" in last and last.split(":", 1)[1] not in ("", "latest")


def _label_selector(text: str) -> dict[str, str]:
    """`a=b,c=d` (equality terms only, which is all deploy/ uses)."""
    return dict(term.split("=", 1) for term in text.split(","))


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


# --- every file -----------------------------------------------------------------


def test_every_yaml_file_under_deploy_parses() -> None:
    files = _yaml_files()
    assert len(files) > 10
    for path in files:
        assert _load_all(path), f"{path} is empty"


@pytest.mark.parametrize(
    "path", _kustomizations(), ids=lambda p: str(p.parent.relative_to(KUBERNETES))
)
def test_kustomization_names_files_that_exist(path: Path) -> None:
    kustomization = _load(path)
    folder = path.parent
    for resource in kustomization.get("resources", []):
        target = folder / resource
        assert target.is_file() or (target / "kustomization.yaml").is_file(), resource
    for component in kustomization.get("components", []):
        assert _load(folder / component / "kustomization.yaml")["kind"] == "Component"
    for patch in kustomization.get("patches", []):
        assert (folder / patch["path"]).is_file(), patch["path"]


def test_the_example_overlay_uses_the_base_and_every_component() -> None:
    overlay = _load(KUBERNETES / "overlays" / "example" / "kustomization.yaml")
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
    for deployment in _objects("Deployment", docs):
        env = _env_names(_container(deployment))
        assert "OTEL_EXPORTER_OTLP_ENDPOINT" in env
        # The autoscaler, not a re-apply, owns the replica count.
        assert "replicas" not in deployment["spec"]


def test_no_secret_values_are_committed() -> None:
    for path in _yaml_files():
        for doc in _objects_in(path):
            assert doc["kind"] != "Secret", f"{path} holds a Secret"


# --- images ---------------------------------------------------------------------


def _dockerfile_stages() -> dict[str, tuple[str, str]]:
    """Each stage of the Dockerfile by name: (what it is FROM, its text)."""
    text = (DEPLOY / "Dockerfile").read_text()
    stages = {}
    for stage in re.split(r"^FROM ", text, flags=re.MULTILINE)[1:]:
        parent, _, name = stage.splitlines()[0].split()
        stages[name] = (parent, stage)
    return stages


def _stage_chain(name: str) -> list[str]:
    """The text of a stage and of every stage it is built FROM, itself first."""
    stages = _dockerfile_stages()
    chain = []
    while name in stages:
        parent, text = stages[name]
        chain.append(text)
        name = parent
    return chain


def _dockerfile_images() -> list[str]:
    """The images the Dockerfile starts from (not its own stages)."""
    stages = _dockerfile_stages()
    return [parent for parent, _ in stages.values() if parent not in stages]


def _all_images() -> Iterator[tuple[str, str]]:
    for name, service in _compose()["services"].items():
        yield f"compose {name}", service["image"]
    for path in KUBERNETES.rglob("*.yaml"):
        for doc in _objects_in(path):
            spec = doc.get("spec", {})
            pod = spec.get("template", {}).get("spec", {})
            for container in [*pod.get("containers", []), *pod.get("initContainers", [])]:
                yield f"{path.relative_to(DEPLOY)} {container['name']}", container["image"]
    for image in _dockerfile_images():
        yield "Dockerfile", image


def test_every_image_is_pinned_to_a_tag_that_is_not_latest() -> None:
    images = list(_all_images())
    assert len(images) > 10
    for where, image in images:
        assert _image_is_pinned(image), f"{where}: {image} is not pinned"


def test_the_image_check_refuses_what_it_should() -> None:
    assert not _image_is_pinned("postgres")
    assert not _image_is_pinned("postgres:latest")
    assert not _image_is_pinned("registry.example.com:5000/holdfast")
    assert _image_is_pinned("registry.example.com:5000/holdfast:0.1.0")


def test_the_services_run_the_image_of_this_version() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert _compose_service("booking")["image"] == f"holdfast:{version}"
    for deployment in _objects("Deployment"):
        assert _container(deployment)["image"] == f"holdfast:{version}"


def test_dockerfile_builds_a_non_root_image_that_writes_no_bytecode() -> None:
    # The last stage is what a plain `docker build` makes: the production image.
    assert list(_dockerfile_stages())[-1] == "runtime"
    runtime = "".join(_stage_chain("runtime"))
    user = re.findall(r"^USER (\S+)", runtime, flags=re.MULTILINE)
    assert user, "the runtime stage sets USER"
    uid = user[-1].split(":")[0]
    # Numeric, so that runAsNonRoot can check it; not root.
    assert uid.isdigit(), uid
    assert int(uid) != 0
    assert "PYTHONDONTWRITEBYTECODE=1" in runtime
    # Only the built virtualenv comes from the builder.
    assert re.findall(r"COPY --from=(\S+) (\S+)", runtime) == [("builder", "/opt/venv")]
    for deployment in [*_objects("Deployment"), *_objects("Job")]:
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsUser"] == int(uid)


def test_the_production_image_carries_no_development_code() -> None:
    """The services, the gateway and the shared library; not devtools (the
    local stack, the embedded engines, the fake Stripe), which has an image
    of its own for compose."""
    builder = "".join(_stage_chain("builder"))
    copied = " ".join(re.findall(r"^COPY (?!--from)(.+) \S+$", builder, re.M))
    assert {"holdfast", "services", "gateway"} <= set(copied.split())
    assert "devtools" not in copied
    assert "devtools" in "".join(_stage_chain("fake-stripe-builder"))
    fake = _compose_service("fake-stripe")
    assert fake["build"]["target"] == "fake-stripe"
    assert fake["image"] != _compose_service("booking")["image"]


def test_dockerignore_lets_in_what_the_package_is_built_from() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    assert {pattern.rstrip("*") for pattern in packages} <= allowed
    assert {"pyproject.toml", pyproject["project"]["readme"]} <= allowed
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", (DEPLOY / "Dockerfile").read_text(), re.M)
    for sources in copied:
        for source in sources.split():
            assert source in allowed, f"the Dockerfile copies {source}, which .dockerignore drops"


# --- Kubernetes base ------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_deployment_runs_the_service_on_the_code_s_ports(service: Service) -> None:
    container = _container(_named("Deployment", service.name))
    assert container["command"] == ["python", "-m", service.module]
    assert set(_container_ports(container).values()) == service.ports
    for name in _env_names(container):
        assert name.startswith("OTEL_") or name in _settings_env_names(service.settings), name


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_deployment_probes_ask_the_service_itself(service: Service) -> None:
    container = _container(_named("Deployment", service.name))
    ports = set(_container_ports(container).values())
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert probe in container, f"{service.name} has no {probe}"
    if service.grpc_port is not None:
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"]["port"] == service.grpc_port
        # Ready asks the service's own entry; started and alive the "" one,
        # which a dependency's outage leaves SERVING (no restarts for it).
        assert container["readinessProbe"]["grpc"]["service"] == service.ready_health
        for probe in ("startupProbe", "livenessProbe"):
            assert container[probe]["grpc"].get("service", "") == ""
    else:
        (port,) = service.http_ports
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port}
    for probe in ("readinessProbe", "livenessProbe"):
        spec = container[probe]
        port = spec["grpc"]["port"] if "grpc" in spec else spec["httpGet"]["port"]
        assert port in ports


@pytest.mark.parametrize("kind", ["Deployment", "Job"])
def test_every_workload_is_locked_down_and_sized(kind: str) -> None:
    workloads = _objects(kind)
    assert workloads
    for workload in workloads:
        name = workload["metadata"]["name"]
        pod = workload["spec"]["template"]["spec"]
        container = _container(workload)
        context = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
        assert context["runAsNonRoot"] is True, name
        assert isinstance(context["runAsUser"], int), name
        assert context["runAsUser"] > 0, name
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["allowPrivilegeEscalation"] is False, name
        assert context["capabilities"]["drop"] == ["ALL"], name
        assert context["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod["automountServiceAccountToken"] is False, name
        for bound in ("requests", "limits"):
            assert set(container["resources"][bound]) == {"cpu", "memory"}, (name, bound)
        # A writable /tmp, the only place a process may write.
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], name


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_prometheus_scrapes_the_metrics_port(service: Service) -> None:
    deployment = _named("Deployment", service.name)
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == service.metrics_port
    assert annotations["prometheus.io/path"] == "/metrics"
    assert service.metrics_port in _container_ports(_container(deployment)).values()


def test_each_kubernetes_service_selects_its_deployment_and_its_ports() -> None:
    services = _objects("Service")
    assert {s["metadata"]["name"] for s in services} == set(BY_NAME)
    for svc in services:
        deployment = _named("Deployment", svc["metadata"]["name"])
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert _matches(svc["spec"]["selector"], labels)
        assert deployment["spec"]["selector"]["matchLabels"] == svc["spec"]["selector"]
        ports = _container_ports(_container(deployment))
        for port in svc["spec"]["ports"]:
            target = port["targetPort"]
            number = ports[target] if isinstance(target, str) else target
            assert number in ports.values(), (svc["metadata"]["name"], target)
            assert port["port"] == number, "the Service keeps the code's port numbers"


def test_services_find_each_other_at_the_service_ports() -> None:
    config = _named("ConfigMap", "holdfast-config")["data"]
    for caller, callee in GRPC_FLOWS:
        settings = BY_NAME[caller].settings
        variable = f"HOLDFAST_{callee.upper()}_TARGET"
        assert variable in _settings_env_names(settings)
        host, port = config[variable].rsplit(":", 1)
        service = _named("Service", host)
        assert int(port) in {p["port"] for p in service["spec"]["ports"]}
        assert int(port) == BY_NAME[callee].grpc_port


def test_config_map_holds_only_real_settings() -> None:
    config = _named("ConfigMap", "holdfast-config")["data"]
    known = set().union(*(_settings_env_names(s.settings) for s in SERVICES))
    assert set(config) <= known, set(config) - known
    for deployment in _objects("Deployment"):
        refs = _container(deployment)["envFrom"]
        assert {"configMapRef": {"name": "holdfast-config"}} in refs


def test_secrets_are_referenced_by_name_and_required_where_the_code_requires_them() -> None:
    required = {"database_url", "redis_url"}
    for deployment in _objects("Deployment"):
        service = BY_NAME[deployment["metadata"]["name"]]
        env = {entry["name"]: entry for entry in _container(deployment)["env"]}
        fields = service.settings.model_fields
        must = {name for name, field in fields.items() if field.is_required()}
        assert must == required | (
            {"stripe_webhook_secrets"} if service.name == "webhooks" else set()
        )
        for field in must:
            variable = f"HOLDFAST_{field.upper()}"
            reference = env[variable]["valueFrom"]["secretKeyRef"]
            assert reference["name"] == "holdfast"
            assert not reference.get("optional", False), variable


def test_the_migrations_job_runs_the_cli_s_migrate() -> None:
    job = _named("Job", "holdfast-migrate")
    container = _container(job)
    assert container["command"] == ["holdfast", "migrate"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["holdfast"] == "holdfast.cli:main"
    assert _env_names(container) == ["HOLDFAST_DATABASE_URL"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("Never", "OnFailure")


# --- Kubernetes components ------------------------------------------------------


def _patch_targets(component: str) -> list[dict[str, str]]:
    kustomization = _load(COMPONENTS / component / "kustomization.yaml")
    return [_label_selector(p["target"]["labelSelector"]) for p in kustomization["patches"]]


def test_tracing_component_points_every_deployment_at_otlp_grpc() -> None:
    for selector in _patch_targets("tracing"):
        for deployment in _objects("Deployment"):
            assert _matches(selector, deployment["metadata"]["labels"])
    patch = _load_all(COMPONENTS / "tracing" / "otlp-env.yaml")[0]
    values = {op["value"]["name"]: op["value"].get("value") for op in patch}
    endpoint = urlsplit(values["OTEL_EXPORTER_OTLP_ENDPOINT"])
    # http: the exporter talks plaintext gRPC to an in-cluster collector.
    assert (endpoint.scheme, endpoint.port) == ("http", OTLP_GRPC_PORT)
    for deployment in _objects("Deployment"):
        assert "OTEL_SERVICE_NAME" in _env_names(_container(deployment))


def test_autoscaling_component_covers_every_deployment() -> None:
    docs = _manifests(COMPONENTS / "autoscaling")
    deployments = {d["metadata"]["name"]: d for d in _objects("Deployment")}
    scaled = {
        h["spec"]["scaleTargetRef"]["name"] for h in _objects("HorizontalPodAutoscaler", docs)
    }
    assert scaled == set(deployments)
    for hpa in _objects("HorizontalPodAutoscaler", docs):
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    budgets = _objects("PodDisruptionBudget", docs)
    assert len(budgets) == len(deployments)
    for budget in budgets:
        selector = budget["spec"]["selector"]["matchLabels"]
        chosen = [
            name
            for name, deployment in deployments.items()
            if _matches(selector, deployment["spec"]["template"]["metadata"]["labels"])
        ]
        assert chosen == [budget["metadata"]["name"]]
    for selector in _patch_targets("autoscaling"):
        assert all(_matches(selector, d["metadata"]["labels"]) for d in deployments.values())


def _policies() -> list[Doc]:
    return _objects("NetworkPolicy", _manifests(COMPONENTS / "network-policies"))


def _policy_for(name: str) -> Doc:
    labels = _named("Deployment", name)["spec"]["template"]["metadata"]["labels"]
    own = [
        policy
        for policy in _policies()
        if policy["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/name") == name
        and _matches(policy["spec"]["podSelector"]["matchLabels"], labels)
    ]
    assert len(own) == 1, f"one NetworkPolicy for {name}"
    return own[0]


def _rule_ports(rule: Doc) -> set[int]:
    return {port["port"] for port in rule.get("ports", [])}


def _from_pods(rule: Doc, key: str) -> list[dict[str, str]]:
    return [
        peer["podSelector"]["matchLabels"] for peer in rule.get(key, []) if "podSelector" in peer
    ]


def test_network_policies_deny_by_default() -> None:
    deny = [p for p in _policies() if "ingress" not in p["spec"] and "egress" not in p["spec"]]
    assert len(deny) == 1
    assert deny[0]["spec"]["podSelector"]["matchLabels"] == PART_OF
    assert deny[0]["spec"]["policyTypes"] == ["Ingress", "Egress"]


@pytest.mark.parametrize("flow", GRPC_FLOWS, ids=lambda f: f"{f[0]}->{f[1]}")
def test_network_policies_allow_each_grpc_call_both_ways(flow: tuple[str, str]) -> None:
    caller, callee = flow
    port = BY_NAME[callee].grpc_port
    caller_labels = _named("Deployment", caller)["spec"]["template"]["metadata"]["labels"]
    callee_labels = _named("Deployment", callee)["spec"]["template"]["metadata"]["labels"]
    assert any(
        port in _rule_ports(rule)
        and any(_matches(peer, caller_labels) for peer in _from_pods(rule, "from"))
        for rule in _policy_for(callee)["spec"]["ingress"]
    ), f"{callee} lets {caller} in on {port}"
    assert any(
        port in _rule_ports(rule)
        and any(_matches(peer, callee_labels) for peer in _from_pods(rule, "to"))
        for rule in _policy_for(caller)["spec"]["egress"]
    ), f"{caller} may call {callee} on {port}"


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_network_policies_let_prometheus_scrape(service: Service) -> None:
    ingress = _policy_for(service.name)["spec"]["ingress"]
    assert any(service.metrics_port in _rule_ports(rule) for rule in ingress)


def test_network_policies_let_only_gateway_and_webhook_receiver_in_from_anywhere() -> None:
    open_ports: dict[str, set[int]] = {}
    for service in SERVICES:
        for rule in _policy_for(service.name)["spec"].get("ingress", []):
            if "from" not in rule:
                open_ports.setdefault(service.name, set()).update(_rule_ports(rule))
    assert open_ports == {
        "webhooks": set(BY_NAME["webhooks"].http_ports),
        "gateway": set(BY_NAME["gateway"].http_ports),
    }


# --- compose --------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_compose_runs_the_service_with_real_settings(service: Service) -> None:
    spec = _compose_service(service.name)
    assert spec["command"] == ["python", "-m", service.module]
    env = _compose_env(service.name)
    for name in env:
        assert name.startswith("OTEL_") or name in _settings_env_names(service.settings), name
    # Every port is the code's default: none is overridden, all are there.
    port_settings = {n for n in _settings_env_names(service.settings) if n.endswith("_PORT")}
    assert not port_settings & set(env)
    assert service.ports <= _compose_container_ports(spec)
    assert spec["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert spec["read_only"] is True


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_compose_health_checks_ask_the_service_itself(service: Service) -> None:
    test = _compose_service(service.name)["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    if service.grpc_port is not None:
        assert "grpc_health" in test[3]
        # Healthy in compose means ready: the service's own entry.
        assert test[4:] == [str(service.grpc_port), service.ready_health]
    else:
        assert urlsplit(test[4]).port in service.http_ports
        assert urlsplit(test[4]).path == "/readyz"


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_compose_exports_every_service_s_spans_to_jaeger(service: Service) -> None:
    env = _compose_env(service.name)
    endpoint = urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert (endpoint.scheme, endpoint.hostname, endpoint.port) == ("http", "jaeger", OTLP_GRPC_PORT)
    assert env["OTEL_SERVICE_NAME"] == f"holdfast-{service.name}"
    jaeger = _compose_service("jaeger")
    assert jaeger["image"].startswith("jaegertracing/jaeger:2.")


def test_compose_services_find_each_other() -> None:
    for caller, callee in GRPC_FLOWS:
        target = _compose_env(caller)[f"HOLDFAST_{callee.upper()}_TARGET"]
        assert target == f"{callee}:{BY_NAME[callee].grpc_port}"
    for name in ("booking", "availability", "webhooks", "gateway"):
        url = urlsplit(_compose_env(name)["HOLDFAST_DATABASE_URL"])
        assert (url.hostname, url.port) == ("postgres", 5432)
        assert url.path.lstrip("/") == _compose_service("postgres")["environment"]["POSTGRES_DB"]
        assert urlsplit(_compose_env(name)["HOLDFAST_REDIS_URL"]).hostname == "redis"


def test_compose_migrates_once_before_the_services() -> None:
    migrate = _compose_service("migrate")
    assert migrate["command"] == ["holdfast", "migrate"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert (
        _compose_env("migrate")["HOLDFAST_DATABASE_URL"]
        == _compose_env("booking")["HOLDFAST_DATABASE_URL"]
    )


def test_compose_fake_stripe_is_wired_to_booking_and_the_webhook_receiver() -> None:
    fake = _compose_env("fake-stripe")
    fake_names = _settings_env_names(FakeStripeSettings)
    assert set(fake) <= fake_names, set(fake) - fake_names
    port = int(fake["HOLDFAST_FAKE_STRIPE_PORT"])
    assert port in _compose_container_ports(_compose_service("fake-stripe"))
    # It sends its events to the webhook service's receiver...
    webhook = urlsplit(fake["HOLDFAST_FAKE_STRIPE_WEBHOOK_URL"])
    assert webhook.hostname == "webhooks"
    assert webhook.port in BY_NAME["webhooks"].http_ports
    assert webhook.path == WEBHOOK_PATH
    # ... signed with the secret the receiver checks, and the services call
    # it with a key it accepts.
    webhooks = _compose_env("webhooks")
    assert (
        webhooks["HOLDFAST_STRIPE_WEBHOOK_SECRETS"] == fake["HOLDFAST_FAKE_STRIPE_WEBHOOK_SECRET"]
    )
    for name in ("booking", "webhooks"):
        env = _compose_env(name)
        assert env["HOLDFAST_STRIPE_API_KEY"] in fake["HOLDFAST_FAKE_STRIPE_API_KEY"].split(",")
        assert env["HOLDFAST_STRIPE_API_BASE"] == f"http://fake-stripe:{port}"
    assert fake["HOLDFAST_FAKE_STRIPE_HOST"] == "0.0.0.0"


# --- Prometheus -----------------------------------------------------------------


@cache
def _prometheus() -> Doc:
    return _load(DEPLOY / "prometheus" / "prometheus.yml")


def test_prometheus_scrapes_every_service_s_metrics_port() -> None:
    targets = {
        target
        for job in _prometheus()["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    for service in SERVICES:
        assert f"{service.name}:{service.metrics_port}" in targets
        assert service.metrics_port in _compose_container_ports(_compose_service(service.name))


def test_prometheus_loads_the_alert_rules_compose_mounts() -> None:
    volumes = _compose_service("prometheus")["volumes"]
    mounted = {v.split(":")[1]: DEPLOY / v.split(":")[0] for v in volumes}
    for rule_file in _prometheus()["rule_files"]:
        assert mounted[rule_file].resolve() == (DEPLOY / "prometheus" / "alerts.yaml").resolve()
    config = f"--config.file={next(p for p, f in mounted.items() if f.name == 'prometheus.yml')}"
    assert config in _compose_service("prometheus")["command"]


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
    groups = _load(DEPLOY / "prometheus" / "alerts.yaml")["groups"]
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
