"""`POST /v1/checkout/sessions`: its parameters, checked as Stripe checks them.

A parameter Stripe accepts but the fake does not model is accepted and
ignored (`_IGNORED_SESSION_PARAMS`); one whose behaviour the fake cannot
honour (prices by id, subscriptions) is refused, rather than silently
misbehaving.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from devtools.fakestripe.errors import invalid_param, missing_param
from devtools.fakestripe.param_checks import (
    check_known,
    expand,
    hash_param,
    integer,
    metadata,
    optional_boolean,
    optional_string,
    string_list,
    url,
)
from holdfast.platform.stripe_limits import MAX_AMOUNT, minimum_charge

# Stripe's own bounds (the amounts and URLs Stripe takes: stripe_limits).
SESSION_MIN_LIFETIME = 30 * 60
SESSION_MAX_LIFETIME = 24 * 3600
# Currencies whose minor unit is the whole unit (Stripe's "zero-decimal").
ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
     "xaf", "xof", "xpf"}
)  # fmt: skip
MAX_LINE_ITEMS = 100

_CURRENCY = re.compile(r"^[a-zA-Z]{3}$")

# Real Checkout parameters that change nothing the fake shows; accepted so a
# caller using them works here as it does against Stripe.
_IGNORED_SESSION_PARAMS = frozenset(
    {
        "adaptive_pricing",
        "after_expiration",
        "automatic_tax",
        "branding_settings",
        "consent_collection",
        "custom_fields",
        "custom_text",
        "customer_creation",
        "customer_update",
        "invoice_creation",
        "optional_items",
        "payment_method_collection",
        "payment_method_configuration",
        "payment_method_options",
        "phone_number_collection",
        "saved_payment_method_options",
        "shipping_address_collection",
        "tax_id_collection",
        "wallet_options",
    }
)
_SESSION_PARAMS = frozenset(
    {
        "allow_promotion_codes",
        "billing_address_collection",
        "cancel_url",
        "client_reference_id",
        "customer_email",
        "expand",
        "expires_at",
        "line_items",
        "locale",
        "metadata",
        "mode",
        "payment_intent_data",
        "payment_method_types",
        "submit_type",
        "success_url",
        "ui_mode",
    }
)
_LINE_ITEM_PARAMS = frozenset(
    {"price", "price_data", "quantity", "adjustable_quantity", "dynamic_tax_rates", "tax_rates"}
)
_PRICE_DATA_PARAMS = frozenset(
    {
        "currency",
        "product",
        "product_data",
        "recurring",
        "tax_behavior",
        "unit_amount",
        "unit_amount_decimal",
    }
)
_PRODUCT_DATA_PARAMS = frozenset(
    {"name", "description", "images", "metadata", "tax_code", "unit_label"}
)
# Copied onto the PaymentIntent; the rest of payment_intent_data is accepted
# and ignored, except capture_method=manual, which the fake cannot honour.
PAYMENT_INTENT_FIELDS = (
    "description",
    "metadata",
    "receipt_email",
    "statement_descriptor",
    "statement_descriptor_suffix",
    "transfer_group",
)
_PAYMENT_INTENT_DATA_PARAMS = frozenset(
    {
        *PAYMENT_INTENT_FIELDS,
        "application_fee_amount",
        "capture_method",
        "on_behalf_of",
        "setup_future_usage",
        "shipping",
        "transfer_data",
    }
)


@dataclass(frozen=True)
class LineItem:
    name: str
    currency: str
    unit_amount: int
    quantity: int


@dataclass(frozen=True)
class SessionParams:
    line_items: tuple[LineItem, ...]
    currency: str
    amount_total: int
    expires_at: int
    client_reference_id: str | None
    metadata: dict[str, str]
    success_url: str | None
    cancel_url: str | None
    customer_email: str | None
    payment_intent_data: dict[str, Any]
    payment_method_types: tuple[str, ...]
    locale: str | None
    submit_type: str | None
    allow_promotion_codes: bool | None
    billing_address_collection: str | None
    expand: tuple[str, ...]


def session_params(params: dict[str, Any], now: int) -> SessionParams:
    """Checks `POST /v1/checkout/sessions` as Stripe does; `now` is the
    creation time `expires_at` is measured from."""
    check_known(params, _SESSION_PARAMS | _IGNORED_SESSION_PARAMS)
    mode = params.get("mode")
    if mode is None:
        raise missing_param("mode")
    if mode != "payment":
        raise invalid_param(
            f"The fake Stripe supports mode=payment only, not {mode!r}.",
            "mode",
            "parameter_invalid",
        )
    ui_mode = optional_string(params, "ui_mode")
    if ui_mode not in (None, "hosted"):
        raise invalid_param("The fake Stripe supports ui_mode=hosted only.", "ui_mode")
    items = line_items(params)
    total = _total(items)
    expires_at = expiry(params, now)
    intent_data = payment_intent_data(params)
    return SessionParams(
        line_items=items,
        currency=items[0].currency,
        amount_total=total,
        expires_at=expires_at,
        client_reference_id=optional_string(params, "client_reference_id", max_length=200),
        metadata=metadata(params.get("metadata"), "metadata"),
        success_url=url(params, "success_url"),
        cancel_url=url(params, "cancel_url"),
        customer_email=optional_string(params, "customer_email", max_length=800),
        payment_intent_data=intent_data,
        payment_method_types=string_list(params, "payment_method_types"),
        locale=optional_string(params, "locale"),
        submit_type=optional_string(params, "submit_type"),
        allow_promotion_codes=optional_boolean(params, "allow_promotion_codes"),
        billing_address_collection=optional_string(params, "billing_address_collection"),
        expand=expand(params),
    )


def _total(items: tuple[LineItem, ...]) -> int:
    """The amount due, in one currency, within what Stripe charges."""
    currencies = {item.currency for item in items}
    if len(currencies) > 1:
        raise invalid_param("All line items must be in the same currency.", "line_items")
    total = sum(item.unit_amount * item.quantity for item in items)
    minimum = minimum_charge(items[0].currency)
    if total < minimum:
        shown = _amount(minimum, items[0].currency)
        raise invalid_param(
            "The Checkout Session's total amount due must add up to at least"
            f" {shown} {items[0].currency}",
            "line_items",
            "amount_too_small",
        )
    if total > MAX_AMOUNT:
        raise invalid_param(
            f"The Checkout Session's total amount due must be no more than {MAX_AMOUNT}.",
            "line_items",
            "amount_too_large",
        )
    return total


def line_items(params: dict[str, Any]) -> tuple[LineItem, ...]:
    raw = params.get("line_items")
    if raw is None or raw == "":
        raise invalid_param(
            "You must provide at least one line item for a Checkout Session in payment mode.",
            "line_items",
            "parameter_missing",
        )
    if not isinstance(raw, list):
        raise invalid_param("Invalid array", "line_items")
    if len(raw) > MAX_LINE_ITEMS:
        raise invalid_param(f"At most {MAX_LINE_ITEMS} line items are allowed.", "line_items")
    return tuple(_line_item(item, f"line_items[{i}]") for i, item in enumerate(raw))


def _line_item(item: Any, param: str) -> LineItem:
    item = hash_param(item, param)
    check_known(item, _LINE_ITEM_PARAMS, prefix=param)
    if "price" in item:
        raise invalid_param(
            "The fake Stripe has no Price objects: use price_data.", f"{param}[price]"
        )
    if "quantity" not in item:
        raise missing_param(f"{param}[quantity]")
    quantity = integer(item["quantity"], f"{param}[quantity]", minimum=1)
    if "price_data" not in item:
        raise missing_param(f"{param}[price_data]")
    price = hash_param(item["price_data"], f"{param}[price_data]")
    prefix = f"{param}[price_data]"
    check_known(price, _PRICE_DATA_PARAMS, prefix=prefix)
    if "recurring" in price:
        raise invalid_param(
            "You must be in subscription mode to specify a recurring price.",
            f"{prefix}[recurring]",
        )
    if "product" in price:
        raise invalid_param(
            "The fake Stripe has no Product objects: use product_data.", f"{prefix}[product]"
        )
    currency = price.get("currency")
    if currency is None:
        raise missing_param(f"{prefix}[currency]")
    if not isinstance(currency, str) or not _CURRENCY.match(currency):
        raise invalid_param(f"Invalid currency: {currency}", f"{prefix}[currency]")
    if "unit_amount" in price:
        unit_amount = integer(price["unit_amount"], f"{prefix}[unit_amount]", minimum=0)
    elif "unit_amount_decimal" in price:
        unit_amount = integer(
            price["unit_amount_decimal"], f"{prefix}[unit_amount_decimal]", minimum=0
        )
    else:
        raise missing_param(f"{prefix}[unit_amount]")
    if "product_data" not in price:
        raise missing_param(f"{prefix}[product_data]")
    product = hash_param(price["product_data"], f"{prefix}[product_data]")
    check_known(product, _PRODUCT_DATA_PARAMS, prefix=f"{prefix}[product_data]")
    name = product.get("name")
    if not isinstance(name, str) or not name:
        raise missing_param(f"{prefix}[product_data][name]")
    return LineItem(
        name=name, currency=currency.lower(), unit_amount=unit_amount, quantity=quantity
    )


def expiry(params: dict[str, Any], now: int) -> int:
    if "expires_at" not in params or params["expires_at"] == "":
        return now + SESSION_MAX_LIFETIME
    expires_at = integer(params["expires_at"], "expires_at")
    if expires_at < now + SESSION_MIN_LIFETIME:
        raise invalid_param(
            "The `expires_at` timestamp must be at least 30 minutes from Checkout Session"
            " creation.",
            "expires_at",
        )
    if expires_at > now + SESSION_MAX_LIFETIME:
        raise invalid_param(
            "The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.",
            "expires_at",
        )
    return expires_at


def payment_intent_data(params: dict[str, Any]) -> dict[str, Any]:
    raw = params.get("payment_intent_data")
    if raw is None or raw == "":
        return {"metadata": {}}
    data = hash_param(raw, "payment_intent_data")
    check_known(data, _PAYMENT_INTENT_DATA_PARAMS, prefix="payment_intent_data")
    if data.get("capture_method") == "manual":
        raise invalid_param(
            "The fake Stripe captures every payment: capture_method=manual is not supported.",
            "payment_intent_data[capture_method]",
        )
    picked: dict[str, Any] = {
        name: optional_string(data, name, param=f"payment_intent_data[{name}]")
        for name in PAYMENT_INTENT_FIELDS
        if name != "metadata" and name in data
    }
    picked["metadata"] = metadata(data.get("metadata"), "payment_intent_data[metadata]")
    return picked


def _amount(minor: int, currency: str) -> str:
    """An amount as Stripe writes it in messages: 0.50, or 50 for JPY."""
    return str(minor) if currency in ZERO_DECIMAL else f"{minor / 100:.2f}"
