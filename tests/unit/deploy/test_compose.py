"""deploy/compose.yaml against the code: each service runs with real settings
on its default ports, health checks ask the service itself, the services,
the migrations and the fake Stripe find each other, and spans go to
Jaeger."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from devtools.fakestripe.config import FakeStripeSettings
from devtools.plan import WEBHOOK_PATH
from tests.support.deploy import (
    BY_NAME,
    GRPC_FLOWS,
    OTLP_GRPC_PORT,
    SERVICES,
    Service,
    compose_container_ports,
    compose_env,
    compose_service,
    settings_env_names,
)


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_compose_runs_the_service_with_real_settings(service: Service) -> None:
    spec = compose_service(service.name)
    assert spec["command"] == ["python", "-m", service.module]
    env = compose_env(service.name)
    for name in env:
        assert name.startswith("OTEL_") or name in settings_env_names(service.settings), name
    # Every port is the code's default: none is overridden, all are there.
    port_settings = {n for n in settings_env_names(service.settings) if n.endswith("_PORT")}
    assert not port_settings & set(env)
    assert service.ports <= compose_container_ports(spec)
    assert spec["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert spec["read_only"] is True


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_compose_health_checks_ask_the_service_itself(service: Service) -> None:
    test = compose_service(service.name)["healthcheck"]["test"]
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
    env = compose_env(service.name)
    endpoint = urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert (endpoint.scheme, endpoint.hostname, endpoint.port) == ("http", "jaeger", OTLP_GRPC_PORT)
    assert env["OTEL_SERVICE_NAME"] == f"holdfast-{service.name}"
    jaeger = compose_service("jaeger")
    assert jaeger["image"].startswith("jaegertracing/jaeger:2.")


def test_compose_services_find_each_other() -> None:
    for caller, callee in GRPC_FLOWS:
        target = compose_env(caller)[f"HOLDFAST_{callee.upper()}_TARGET"]
        assert target == f"{callee}:{BY_NAME[callee].grpc_port}"
    for name in ("booking", "availability", "webhooks", "gateway"):
        url = urlsplit(compose_env(name)["HOLDFAST_DATABASE_URL"])
        assert (url.hostname, url.port) == ("postgres", 5432)
        assert url.path.lstrip("/") == compose_service("postgres")["environment"]["POSTGRES_DB"]
        assert urlsplit(compose_env(name)["HOLDFAST_REDIS_URL"]).hostname == "redis"


def test_compose_migrates_once_before_the_services() -> None:
    migrate = compose_service("migrate")
    assert migrate["command"] == ["holdfast", "migrate"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert (
        compose_env("migrate")["HOLDFAST_DATABASE_URL"]
        == compose_env("booking")["HOLDFAST_DATABASE_URL"]
    )


def test_compose_fake_stripe_is_wired_to_booking_and_the_webhook_receiver() -> None:
    fake = compose_env("fake-stripe")
    fake_names = settings_env_names(FakeStripeSettings)
    assert set(fake) <= fake_names, set(fake) - fake_names
    port = int(fake["HOLDFAST_FAKE_STRIPE_PORT"])
    assert port in compose_container_ports(compose_service("fake-stripe"))
    # It sends its events to the webhook service's receiver...
    webhook = urlsplit(fake["HOLDFAST_FAKE_STRIPE_WEBHOOK_URL"])
    assert webhook.hostname == "webhooks"
    assert webhook.port in BY_NAME["webhooks"].http_ports
    assert webhook.path == WEBHOOK_PATH
    # ... signed with the secret the receiver checks, and the services call
    # it with a key it accepts.
    webhooks = compose_env("webhooks")
    assert (
        webhooks["HOLDFAST_STRIPE_WEBHOOK_SECRETS"] == fake["HOLDFAST_FAKE_STRIPE_WEBHOOK_SECRET"]
    )
    for name in ("booking", "webhooks"):
        env = compose_env(name)
        assert env["HOLDFAST_STRIPE_API_KEY"] in fake["HOLDFAST_FAKE_STRIPE_API_KEY"].split(",")
        assert env["HOLDFAST_STRIPE_API_BASE"] == f"http://fake-stripe:{port}"
    assert fake["HOLDFAST_FAKE_STRIPE_HOST"] == "0.0.0.0"
