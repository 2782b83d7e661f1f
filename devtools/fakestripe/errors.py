"""Stripe's error responses: `{"error": {"type", "message", "code"?, "param"?}}`.

stripe-python picks its exception class from the HTTP status and `type`
(400/404 `invalid_request_error` -> InvalidRequestError, `idempotency_error`
-> IdempotencyError, 401 -> AuthenticationError), so both must match Stripe's.
"""

from __future__ import annotations

from typing import Any

DOCS = "https://stripe.com/docs/error-codes"


class StripeError(Exception):
    """An API error, raised anywhere below the routes and answered as Stripe does.

    `replayable` is False for errors found while checking parameters: Stripe
    saves no idempotent result then ("no API endpoint began execution"), so a
    corrected retry with the same key goes through.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        error_type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        replayable: bool = True,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = error_type
        self.code = code
        self.param = param
        self.replayable = replayable

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "type": self.type}
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = f"{DOCS}/{self.code.replace('_', '-')}"
        if self.param is not None:
            error["param"] = self.param
        return {"error": error}


def invalid_param(message: str, param: str, code: str | None = None) -> StripeError:
    """A parameter Stripe would refuse before doing anything."""
    return StripeError(message, param=param, code=code, replayable=False)


def missing_param(param: str) -> StripeError:
    return invalid_param(f"Missing required param: {param}.", param, "parameter_missing")


def unknown_param(param: str) -> StripeError:
    return invalid_param(f"Received unknown parameter: {param}", param, "parameter_unknown")


def no_such(kind: str, object_id: str, *, param: str = "id", status: int = 404) -> StripeError:
    """An id that names nothing: 404 in the path, 400 when passed as a parameter."""
    return StripeError(
        f"No such {kind}: '{object_id}'", status=status, code="resource_missing", param=param
    )


def unrecognized_url(method: str, path: str) -> StripeError:
    return StripeError(
        f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs"
        " or we can help at https://support.stripe.com/.",
        status=404,
        replayable=False,
    )
