"""The Kubernetes base and components against the code: the ports are the
settings' defaults, the environment variables are settings that exist, the
probes ask the service itself, every workload is locked down, and the
autoscaling, tracing and network-policy components cover every service."""

from __future__ import annotations

import tomllib
from urllib.parse import urlsplit

import pytest

from tests.support.deploy import (
    BY_NAME,
    COMPONENTS,
    GRPC_FLOWS,
    OTLP_GRPC_PORT,
    PART_OF,
    ROOT,
    SERVICES,
    Doc,
    Service,
    container_ports,
    env_names,
    label_selector,
    load,
    load_all,
    manifests,
    matches,
    named,
    objects,
    only_container,
    settings_env_names,
)


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_deployment_runs_the_service_on_the_code_s_ports(service: Service) -> None:
    container = only_container(named("Deployment", service.name))
    assert container["command"] == ["python", "-m", service.module]
    assert set(container_ports(container).values()) == service.ports
    for name in env_names(container):
        assert name.startswith("OTEL_") or name in settings_env_names(service.settings), name


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_deployment_probes_ask_the_service_itself(service: Service) -> None:
    container = only_container(named("Deployment", service.name))
    ports = set(container_ports(container).values())
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
    workloads = objects(kind)
    assert workloads
    for workload in workloads:
        name = workload["metadata"]["name"]
        pod = workload["spec"]["template"]["spec"]
        container = only_container(workload)
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
    deployment = named("Deployment", service.name)
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == service.metrics_port
    assert annotations["prometheus.io/path"] == "/metrics"
    assert service.metrics_port in container_ports(only_container(deployment)).values()


def test_each_kubernetes_service_selects_its_deployment_and_its_ports() -> None:
    services = objects("Service")
    assert {s["metadata"]["name"] for s in services} == set(BY_NAME)
    for svc in services:
        deployment = named("Deployment", svc["metadata"]["name"])
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert matches(svc["spec"]["selector"], labels)
        assert deployment["spec"]["selector"]["matchLabels"] == svc["spec"]["selector"]
        ports = container_ports(only_container(deployment))
        for port in svc["spec"]["ports"]:
            target = port["targetPort"]
            number = ports[target] if isinstance(target, str) else target
            assert number in ports.values(), (svc["metadata"]["name"], target)
            assert port["port"] == number, "the Service keeps the code's port numbers"


def test_services_find_each_other_at_the_service_ports() -> None:
    config = named("ConfigMap", "holdfast-config")["data"]
    for caller, callee in GRPC_FLOWS:
        settings = BY_NAME[caller].settings
        variable = f"HOLDFAST_{callee.upper()}_TARGET"
        assert variable in settings_env_names(settings)
        host, port = config[variable].rsplit(":", 1)
        service = named("Service", host)
        assert int(port) in {p["port"] for p in service["spec"]["ports"]}
        assert int(port) == BY_NAME[callee].grpc_port


def test_config_map_holds_only_real_settings() -> None:
    config = named("ConfigMap", "holdfast-config")["data"]
    known = set().union(*(settings_env_names(s.settings) for s in SERVICES))
    assert set(config) <= known, set(config) - known
    for deployment in objects("Deployment"):
        refs = only_container(deployment)["envFrom"]
        assert {"configMapRef": {"name": "holdfast-config"}} in refs


def test_secrets_are_referenced_by_name_and_required_where_the_code_requires_them() -> None:
    required = {"database_url", "redis_url"}
    for deployment in objects("Deployment"):
        service = BY_NAME[deployment["metadata"]["name"]]
        env = {entry["name"]: entry for entry in only_container(deployment)["env"]}
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
    job = named("Job", "holdfast-migrate")
    container = only_container(job)
    assert container["command"] == ["holdfast", "migrate"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["holdfast"] == "holdfast.cli:main"
    assert env_names(container) == ["HOLDFAST_DATABASE_URL"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("Never", "OnFailure")


def _patch_targets(component: str) -> list[dict[str, str]]:
    kustomization = load(COMPONENTS / component / "kustomization.yaml")
    return [label_selector(p["target"]["labelSelector"]) for p in kustomization["patches"]]


def test_tracing_component_points_every_deployment_at_otlp_grpc() -> None:
    for selector in _patch_targets("tracing"):
        for deployment in objects("Deployment"):
            assert matches(selector, deployment["metadata"]["labels"])
    patch = load_all(COMPONENTS / "tracing" / "otlp-env.yaml")[0]
    values = {op["value"]["name"]: op["value"].get("value") for op in patch}
    endpoint = urlsplit(values["OTEL_EXPORTER_OTLP_ENDPOINT"])
    # http: the exporter talks plaintext gRPC to an in-cluster collector.
    assert (endpoint.scheme, endpoint.port) == ("http", OTLP_GRPC_PORT)
    for deployment in objects("Deployment"):
        assert "OTEL_SERVICE_NAME" in env_names(only_container(deployment))


def test_autoscaling_component_covers_every_deployment() -> None:
    docs = manifests(COMPONENTS / "autoscaling")
    deployments = {d["metadata"]["name"]: d for d in objects("Deployment")}
    scaled = {h["spec"]["scaleTargetRef"]["name"] for h in objects("HorizontalPodAutoscaler", docs)}
    assert scaled == set(deployments)
    for hpa in objects("HorizontalPodAutoscaler", docs):
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    budgets = objects("PodDisruptionBudget", docs)
    assert len(budgets) == len(deployments)
    for budget in budgets:
        selector = budget["spec"]["selector"]["matchLabels"]
        chosen = [
            name
            for name, deployment in deployments.items()
            if matches(selector, deployment["spec"]["template"]["metadata"]["labels"])
        ]
        assert chosen == [budget["metadata"]["name"]]
    for selector in _patch_targets("autoscaling"):
        assert all(matches(selector, d["metadata"]["labels"]) for d in deployments.values())


def _policies() -> list[Doc]:
    return objects("NetworkPolicy", manifests(COMPONENTS / "network-policies"))


def _policy_for(name: str) -> Doc:
    labels = named("Deployment", name)["spec"]["template"]["metadata"]["labels"]
    own = [
        policy
        for policy in _policies()
        if policy["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/name") == name
        and matches(policy["spec"]["podSelector"]["matchLabels"], labels)
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
    caller_labels = named("Deployment", caller)["spec"]["template"]["metadata"]["labels"]
    callee_labels = named("Deployment", callee)["spec"]["template"]["metadata"]["labels"]
    assert any(
        port in _rule_ports(rule)
        and any(matches(peer, caller_labels) for peer in _from_pods(rule, "from"))
        for rule in _policy_for(callee)["spec"]["ingress"]
    ), f"{callee} lets {caller} in on {port}"
    assert any(
        port in _rule_ports(rule)
        and any(matches(peer, callee_labels) for peer in _from_pods(rule, "to"))
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
