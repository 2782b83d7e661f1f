import pytest

from holdfast.platform.config import load
from services.booking.config import BookingSettings
from services.webhooks.config import WebhooksSettings


def test_missing_database_url_fails_fast_with_its_variable_name(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("HOLDFAST_DATABASE_URL", raising=False)

    with pytest.raises(SystemExit) as exited:
        load(BookingSettings)

    assert exited.value.code == 2
    assert "HOLDFAST_DATABASE_URL" in capsys.readouterr().err


def test_ttl_bounds_must_be_ordered(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOLDFAST_DATABASE_URL", "postgresql://localhost/x")
    monkeypatch.setenv("HOLDFAST_REDIS_URL", "redis://localhost/0")
    monkeypatch.setenv("HOLDFAST_HOLD_TTL_MIN_SECONDS", "900")

    with pytest.raises(SystemExit):
        load(BookingSettings)

    assert "HOLD_TTL_MIN_SECONDS" in capsys.readouterr().err


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOLDFAST_DATABASE_URL", "postgresql://localhost/x")
    monkeypatch.setenv("HOLDFAST_REDIS_URL", "redis://localhost/0")
    monkeypatch.setenv("HOLDFAST_BOOKING_PORT", "6000")

    settings = load(BookingSettings)

    assert settings.booking_port == 6000
    assert settings.hold_ttl_default_seconds == 600


@pytest.mark.parametrize(
    ("variable", "url"),
    [
        ("HOLDFAST_CHECKOUT_SUCCESS_URL", "http://"),
        ("HOLDFAST_CHECKOUT_CANCEL_URL", "/checkout/cancelled?hold={HOLD_ID}"),
    ],
)
def test_checkout_urls_stripe_would_refuse_stop_the_service_at_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str, url: str
) -> None:
    monkeypatch.setenv("HOLDFAST_DATABASE_URL", "postgresql://localhost/x")
    monkeypatch.setenv("HOLDFAST_REDIS_URL", "redis://localhost/0")
    monkeypatch.setenv(variable, url)

    with pytest.raises(SystemExit):
        load(BookingSettings)

    assert variable in capsys.readouterr().err


def test_a_payment_action_must_end_within_its_lease(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOLDFAST_DATABASE_URL", "postgresql://localhost/x")
    monkeypatch.setenv("HOLDFAST_REDIS_URL", "redis://localhost/0")
    monkeypatch.setenv("HOLDFAST_PAYMENT_ACTION_TIMEOUT_SECONDS", "30")
    monkeypatch.setenv("HOLDFAST_PAYMENT_ACTION_LEASE_SECONDS", "30")

    with pytest.raises(SystemExit):
        load(BookingSettings)

    assert (
        "PAYMENT_ACTION_TIMEOUT_SECONDS < PAYMENT_ACTION_LEASE_SECONDS" in capsys.readouterr().err
    )


def test_stripe_events_outlive_stripe_s_redeliveries(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOLDFAST_DATABASE_URL", "postgresql://localhost/x")
    monkeypatch.setenv("HOLDFAST_REDIS_URL", "redis://localhost/0")
    monkeypatch.setenv("HOLDFAST_STRIPE_WEBHOOK_SECRETS", "whsec_x")
    monkeypatch.setenv("HOLDFAST_STRIPE_EVENT_RETENTION_DAYS", "3")

    with pytest.raises(SystemExit):
        load(WebhooksSettings)

    assert "HOLDFAST_STRIPE_EVENT_RETENTION_DAYS" in capsys.readouterr().err
