"""The fake Stripe reads form bodies back into exactly what stripe-python encoded."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stripe._encode import _api_encode

from devtools.fakestripe.forms import FormError, parse_form


def encode(params: dict[str, Any]) -> str:
    """What stripe-python sends (its own encoder, as _api_requestor calls it)."""
    return urlencode(list(_api_encode(params)))


def test_nested_hashes_and_arrays() -> None:
    body = encode(
        {
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {
                        "currency": "eur",
                        "unit_amount": 2500,
                        "product_data": {"name": "Kayak & paddle"},
                    },
                    "quantity": 2,
                },
                {"price": "price_1", "quantity": 1},
            ],
            "metadata": {"hold_id": "h-1"},
            "expand": ["payment_intent"],
            "allow_promotion_codes": True,
        }
    )
    assert "line_items%5B0%5D%5Bprice_data%5D%5Bunit_amount%5D=2500" in body
    assert parse_form(body) == {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {
                    "currency": "eur",
                    "unit_amount": "2500",
                    "product_data": {"name": "Kayak & paddle"},
                },
                "quantity": "2",
            },
            {"price": "price_1", "quantity": "1"},
        ],
        "metadata": {"hold_id": "h-1"},
        "expand": ["payment_intent"],
        "allow_promotion_codes": "true",
    }


def test_metadata_keys_that_look_like_indexes_stay_keys() -> None:
    assert parse_form("metadata[0]=a&metadata[1]=b") == {"metadata": {"0": "a", "1": "b"}}
    assert parse_form("tags[0]=a&tags[1]=b") == {"tags": ["a", "b"]}


def test_empty_brackets_append() -> None:
    assert parse_form("expand[]=a&expand[]=b") == {"expand": ["a", "b"]}


def test_empty_values_are_kept() -> None:
    # Stripe reads `metadata[k]=` as "unset k": the endpoint decides, not the parser.
    assert parse_form("metadata[k]=&description=") == {"metadata": {"k": ""}, "description": ""}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ("a=1&a[b]=2", "a[b]"),
        ("a[b]=2&a=1", "a"),
        ("a=1&a=2", "a"),
        ("items[0]=x&items[2]=y", "items"),
        ("a]=1", "a]"),
        ("items[]=x&items[k]=y", "items"),
    ],
)
def test_contradictions_are_refused_naming_the_parameter(body: str, param: str) -> None:
    with pytest.raises(FormError) as raised:
        parse_form(body)
    assert raised.value.param == param


_names = st.from_regex(r"[a-z][a-z_]{0,7}", fullmatch=True).filter(lambda n: n != "metadata")
_text = st.text(st.characters(codec="utf-8"), max_size=8)
_free_keys = st.text(st.characters(codec="utf-8", exclude_characters="[]"), min_size=1, max_size=8)
_trees = st.recursive(
    _text,
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3),
        st.dictionaries(_names, inner, min_size=1, max_size=3),
    ),
    max_leaves=12,
)
_params = st.tuples(
    st.dictionaries(_names, _trees, max_size=4),
    st.dictionaries(_free_keys, _text, min_size=1, max_size=4),
).map(lambda parts: {**parts[0], "metadata": parts[1]})


@given(_params)
def test_whatever_stripe_python_encodes_parses_back_to_the_same_params(
    params: dict[str, Any],
) -> None:
    assert parse_form(encode(params)) == params
