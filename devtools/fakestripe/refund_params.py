"""`POST /v1/refunds`: its parameters, checked as Stripe checks them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from devtools.fakestripe.errors import invalid_param
from devtools.fakestripe.param_checks import check_known, expand, integer, metadata, optional_string

REFUND_REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer"})
_REFUND_PARAMS = frozenset(
    {
        "amount",
        "charge",
        "expand",
        "instructions_email",
        "metadata",
        "origin",
        "payment_intent",
        "reason",
        "refund_application_fee",
        "reverse_transfer",
    }
)


@dataclass(frozen=True)
class RefundParams:
    payment_intent: str | None
    charge: str | None
    amount: int | None
    reason: str | None
    metadata: dict[str, str]
    expand: tuple[str, ...]


def refund_params(params: dict[str, Any]) -> RefundParams:
    """Checks `POST /v1/refunds` (the target's existence is checked later)."""
    check_known(params, _REFUND_PARAMS)
    intent = optional_string(params, "payment_intent")
    charge = optional_string(params, "charge")
    if intent is None and charge is None:
        raise invalid_param(
            "One of the following params should be provided for this request:"
            " payment_intent or charge.",
            "payment_intent",
            "parameter_missing",
        )
    amount = None
    if params.get("amount") not in (None, ""):
        amount = integer(params["amount"], "amount", minimum=1)
    reason = optional_string(params, "reason")
    if reason is not None and reason not in REFUND_REASONS:
        raise invalid_param(
            f"Invalid reason: must be one of {', '.join(sorted(REFUND_REASONS))}",
            "reason",
            "parameter_invalid",
        )
    return RefundParams(
        payment_intent=intent,
        charge=charge,
        amount=amount,
        reason=reason,
        metadata=metadata(params.get("metadata"), "metadata"),
        expand=expand(params),
    )
