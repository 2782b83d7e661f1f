"""What Stripe refuses in a Checkout Session, checked before Stripe is asked.

A request Stripe would refuse is better refused by us, at once and naming the
field, than sent: Stripe's refusal comes later, as a failed payment attempt.
The same rules are what the local fake Stripe enforces, so the two agree.

Sources: Stripe's documented minimum and maximum charge amounts
(https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts) and
its URL parameters, which must be absolute http(s) URLs with a host.
"""

from __future__ import annotations

from urllib.parse import urlsplit

# The largest amount Stripe charges, in minor units (999,999.99 in a
# two-decimal currency); a Checkout Session's total may not exceed it.
MAX_AMOUNT = 99_999_999

# The smallest charge Stripe accepts per currency, in minor units (HUF is a
# two-decimal currency in Stripe's API). For any other currency Stripe's floor
# depends on the conversion to the account's settlement currency: only a zero
# total is known to be refused.
MINIMUM_CHARGE: dict[str, int] = {
    "AED": 200,
    "AUD": 50,
    "BGN": 100,
    "BRL": 50,
    "CAD": 50,
    "CHF": 50,
    "CZK": 1500,
    "DKK": 250,
    "EUR": 50,
    "GBP": 30,
    "HKD": 400,
    "HUF": 17500,
    "INR": 50,
    "JPY": 50,
    "MXN": 1000,
    "MYR": 200,
    "NOK": 300,
    "NZD": 50,
    "PLN": 200,
    "RON": 200,
    "SEK": 300,
    "SGD": 50,
    "THB": 1000,
    "USD": 50,
}


def minimum_charge(currency: str) -> int:
    """The smallest total Stripe takes in `currency` (ISO 4217, any case)."""
    return MINIMUM_CHARGE.get(currency.upper(), 1)


def url_problem(url: str) -> str | None:
    """Why Stripe would refuse `url` as a success or cancel URL; None if it
    would take it. Stripe takes absolute http and https URLs with a host."""
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        return "must not contain spaces or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        return "must be a valid URL"
    if parts.scheme not in ("http", "https"):
        return "must be an absolute http:// or https:// URL"
    if not parts.hostname:
        return "must name a host, e.g. https://shop.example/done"
    return None


def total_problem(amount_minor: int, currency: str) -> str | None:
    """Why Stripe would refuse a Checkout Session of this total; None if it
    would take it."""
    code = currency.upper()
    if amount_minor <= 0:
        return f"the hold's total is {amount_minor} {code}: nothing to pay"
    minimum = minimum_charge(code)
    if amount_minor < minimum:
        return (
            f"the hold's total, {amount_minor} {code} minor units, is below Stripe's minimum"
            f" charge for {code} ({minimum} minor units)"
        )
    if amount_minor > MAX_AMOUNT:
        return (
            f"the hold's total, {amount_minor} {code} minor units, is above Stripe's maximum"
            f" of {MAX_AMOUNT} minor units"
        )
    return None
