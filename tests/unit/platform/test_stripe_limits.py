"""What Stripe takes in a Checkout Session, as the booking service checks it
before asking Stripe (and the fake Stripe enforces)."""

import pytest

from holdfast.platform.stripe_limits import total_problem, url_problem


@pytest.mark.parametrize(
    "url",
    [
        "https://shop.example/done?session={CHECKOUT_SESSION_ID}",
        "http://localhost:8080/checkout/success?hold=1",
        "https://[::1]:8443/done",
    ],
)
def test_absolute_http_urls_with_a_host_are_taken(url: str) -> None:
    assert url_problem(url) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://",
        "https:///done",
        "http://:8080/done",
        "http://user@/done",
        "/done",
        "shop.example/done",
        "ftp://shop.example/done",
        "javascript:alert(1)",
        "https://shop example/done",
        "https://shop.example/\ndone",
        "https://shop.example:99999/done",
    ],
)
def test_urls_stripe_refuses_are_refused(url: str) -> None:
    assert url_problem(url) is not None


@pytest.mark.parametrize(
    ("amount", "currency", "taken"),
    [
        (0, "EUR", False),
        (49, "EUR", False),
        (50, "EUR", True),
        (29, "GBP", False),
        (30, "gbp", True),
        (49, "JPY", False),
        (50, "JPY", True),
        (17_499, "HUF", False),
        (17_500, "HUF", True),
        (1, "ISK", True),  # no documented minimum: only nothing is refused
        (99_999_999, "USD", True),
        (100_000_000, "USD", False),
    ],
)
def test_totals_are_taken_between_the_currencys_minimum_and_stripes_maximum(
    amount: int, currency: str, taken: bool
) -> None:
    assert (total_problem(amount, currency) is None) is taken
