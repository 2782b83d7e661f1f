"""Stripe's form encoding: `a[b][0][c]=v` pairs into nested dicts and lists.

stripe-python sends every v1 parameter as `application/x-www-form-urlencoded`
(query string for GET), flattening objects to `key[sub]` and arrays to
`key[0]`, `key[1]`... (`key[]` is accepted too, as Stripe does). Values stay
strings: which ones are integers or booleans is the endpoint's business, the
way Stripe only knows it from each endpoint's schema.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

# Hashes whose keys are the caller's own: `metadata[0]=x` is a key "0", never
# an array, so these are never turned into lists.
FREE_FORM_HASHES = frozenset({"metadata"})

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


class FormError(ValueError):
    """A key that cannot be read, or two keys that contradict each other.

    `param` is the offending parameter as sent, for Stripe's `param` field."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


def parse_form(body: str | bytes) -> dict[str, Any]:
    """Parses a form-encoded body or query string into nested params."""
    text = body.decode("utf-8", errors="strict") if isinstance(body, bytes) else body
    return parse_pairs(parse_qsl(text, keep_blank_values=True, strict_parsing=False))


def parse_pairs(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Nests `(key, value)` pairs: `a[b]` into dicts, `a[0]`/`a[]` into lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        path = _split(key)
        _insert(root, path, value, key)
    result = _finish(root, name="", param="")
    assert isinstance(result, dict)
    return result


def _split(key: str) -> list[str]:
    match = _KEY.match(key)
    if match is None:
        raise FormError(f"Invalid parameter name: {key}", key)
    return [match.group(1), *_SEGMENT.findall(match.group(2))]


# While parsing, arrays are dicts keyed by index; `[]` appends get keys of a
# type no sent key can have, so they never collide with `[0]`.
class _Append:
    __slots__ = ("n",)

    def __init__(self, n: int) -> None:
        self.n = n

    def __hash__(self) -> int:
        return hash(("append", self.n))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Append) and other.n == self.n


def _insert(node: dict[Any, Any], path: list[str], value: str, key: str) -> None:
    *parents, last = path
    for segment in parents:
        slot: Any = _Append(len(node)) if segment == "" else segment
        child = node.setdefault(slot, {})
        if not isinstance(child, dict):
            raise FormError(f"Invalid hash: {key} is also sent as a single value", key)
        node = child
    slot = _Append(len(node)) if last == "" else last
    if slot in node:
        kind = "hash" if isinstance(node[slot], dict) else "value"
        raise FormError(f"Invalid {kind}: {key} is sent more than once", key)
    node[slot] = value


def _finish(node: Any, name: str, param: str) -> Any:
    """Turns index-keyed dicts into lists, checking the indexes run 0..n-1."""
    if not isinstance(node, dict):
        return node
    keys = list(node)
    appended = [k for k in keys if isinstance(k, _Append)]
    if appended and len(appended) != len(keys):
        raise FormError(f"Invalid array: {param} mixes [] with named keys", param)
    if appended:
        return [_finish(node[k], name, f"{param}[]") for k in sorted(appended, key=lambda a: a.n)]
    is_array = name not in FREE_FORM_HASHES and bool(keys) and all(str(k).isdigit() for k in keys)
    if is_array:
        indexes = sorted(int(k) for k in keys)
        if indexes != list(range(len(indexes))):
            raise FormError(f"Invalid array: {param} indexes must run from 0 without gaps", param)
        return [_finish(node[str(i)], name, f"{param}[{i}]") for i in indexes]
    return {
        str(k): _finish(v, str(k), f"{param}[{k}]" if param else str(k)) for k, v in node.items()
    }
