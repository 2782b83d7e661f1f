"""Form parameter checks with Stripe's messages, shared by the endpoints.

Form values arrive as strings (see forms.py); this is where they become
integers, booleans and URLs, and where an unknown parameter is refused as
Stripe refuses it, so a typo fails in the tests instead of in production.
What each endpoint takes is in checkout_params.py and refund_params.py;
the others take `expand` alone (expand_only).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from devtools.fakestripe.errors import StripeError, invalid_param, unknown_param
from holdfast.platform.stripe_limits import url_problem

METADATA_MAX_KEYS = 50
METADATA_MAX_KEY_LENGTH = 40
METADATA_MAX_VALUE_LENGTH = 500


def check_known(params: dict[str, Any], allowed: Collection[str], *, prefix: str = "") -> None:
    for name in params:
        if name not in allowed:
            raise unknown_param(f"{prefix}[{name}]" if prefix else name)


def hash_param(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid_param("Invalid object", param)
    return value


def integer(value: Any, param: str, *, minimum: int | None = None) -> int:
    if not isinstance(value, str) or not re.fullmatch(r"-?\d+", value):
        raise invalid_param(f"Invalid integer: {value}", param, "parameter_invalid_integer")
    number = int(value)
    if minimum is not None and number < minimum:
        raise invalid_param(
            f"This value must be greater than or equal to {minimum}.",
            param,
            "parameter_invalid_integer",
        )
    return number


def optional_string(
    params: dict[str, Any], name: str, *, max_length: int = 5000, param: str | None = None
) -> str | None:
    """A string parameter; Stripe reads an empty string as "not set"."""
    value = params.get(name)
    where = param or name
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise invalid_param(f"Invalid string: {value!r}", where, "parameter_invalid_string")
    if len(value) > max_length:
        raise invalid_param(
            f"Invalid string: must be at most {max_length} characters",
            where,
            "parameter_invalid_string",
        )
    return value


def optional_boolean(params: dict[str, Any], name: str) -> bool | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if value not in ("true", "false"):
        raise invalid_param(f"Invalid boolean: {value}", name, "parameter_invalid_boolean")
    return bool(value == "true")


def string_list(params: dict[str, Any], name: str) -> tuple[str, ...]:
    value = params.get(name)
    if value is None or value == "":
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid_param("Invalid array", name)
    return tuple(value)


def url(params: dict[str, Any], name: str) -> str | None:
    value = optional_string(params, name)
    if value is None:
        return None
    if url_problem(value) is not None:
        raise invalid_param("Not a valid URL", name, "url_invalid")
    return value


def metadata(value: Any, param: str) -> dict[str, str]:
    """Metadata as Stripe bounds it; an empty value means "no key"."""
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise invalid_param("Invalid object", param)
    if len(value) > METADATA_MAX_KEYS:
        raise invalid_param(
            f"You can specify up to {METADATA_MAX_KEYS} metadata keys.", param, "parameter_invalid"
        )
    result: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(item, str):
            raise invalid_param("Invalid string", f"{param}[{key}]", "parameter_invalid_string")
        if len(key) > METADATA_MAX_KEY_LENGTH:
            raise invalid_param(
                f"Metadata keys can have up to {METADATA_MAX_KEY_LENGTH} characters.",
                f"{param}[{key}]",
            )
        if len(item) > METADATA_MAX_VALUE_LENGTH:
            raise invalid_param(
                f"Metadata values can have up to {METADATA_MAX_VALUE_LENGTH} characters, but you"
                f" passed in a value that is {len(item)} characters.",
                f"{param}[{key}]",
            )
        if item != "":
            result[key] = item
    return result


def expand(params: dict[str, Any]) -> tuple[str, ...]:
    return string_list(params, "expand")


def not_expandable(path: str) -> StripeError:
    return invalid_param(f"This property cannot be expanded ({path}).", "expand")


def expand_only(params: dict[str, Any]) -> tuple[str, ...]:
    """For endpoints whose only parameter is `expand` (retrieve, expire)."""
    check_known(params, {"expand"})
    return expand(params)
