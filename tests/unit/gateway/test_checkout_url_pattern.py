"""The gateway's documented checkout URL pattern says what Stripe takes, as the
booking service judges it (stripe_limits.url_problem): a URL the pattern admits
is refused only when it does not parse (a port above 65535, a bracketed host
that is no IPv6 address), and the URLs Stripe refuses that the
issue names are outside the pattern."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.models import CHECKOUT_URL
from holdfast.platform.stripe_limits import url_problem

PATTERN = re.compile(CHECKOUT_URL)
# What the pattern means to an engine whose \s is ASCII whitespace only: to
# ECMA-262 (OpenAPI's dialect, which schemathesis generates from) U+0085 is
# no space, while it is one to Python and to the gateway's validator.
ASCII_READING = re.compile(CHECKOUT_URL, re.ASCII)
SPACES = [c for c in map(chr, range(0x3001)) if c.isspace()]


@given(st.from_regex(PATTERN, fullmatch=True))
def test_what_the_pattern_admits_stripe_takes(url: str) -> None:
    assert url_problem(url) in (None, "must be a valid URL"), url


@pytest.mark.parametrize(
    "url",
    ["http://", "https://", "http:///done", "http://:80/", "ftp://shop.example/",
     "shop.example/done", "http://shop example/", "http://shop.example/\n", "http://u@/x"],
)  # fmt: skip
def test_what_stripe_refuses_the_pattern_refuses(url: str) -> None:
    assert url_problem(url) is not None
    assert PATTERN.fullmatch(url) is None


@pytest.mark.parametrize(
    "url",
    ["http://localhost:8080/checkout/success?hold={HOLD_ID}", "https://shop.example",
     "https://[::1]:8443/done#top", "http://u:pw@shop.example/x"],
)  # fmt: skip
def test_what_stripe_takes_the_pattern_admits(url: str) -> None:
    assert url_problem(url) is None
    assert PATTERN.fullmatch(url) is not None


@pytest.mark.parametrize("space", [*SPACES, "\ufeff"], ids=lambda c: f"U+{ord(c):04X}")
def test_the_pattern_means_the_same_to_every_regex_dialect(space: str) -> None:
    """It names the characters it refuses rather than saying \\s, whose
    meaning differs between regex dialects (a URL with U+0085 in its host was
    valid to the fuzzer and refused by the gateway)."""
    for url in (f"https://shop{space}example/", f"https://shop.example/a{space}b"):
        refused = url_problem(url) is not None
        assert (PATTERN.fullmatch(url) is None) == refused, url
        assert (ASCII_READING.fullmatch(url) is None) == refused, url
