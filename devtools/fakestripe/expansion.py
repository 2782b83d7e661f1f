"""`expand[]=payment_intent`, `expand[]=payment_intent.latest_charge`: ids
replaced by the objects they name, as Stripe does on request."""

from __future__ import annotations

from collections.abc import Iterable

from devtools.fakestripe.objects import JsonObject
from devtools.fakestripe.param_checks import not_expandable
from devtools.fakestripe.store import Store, snapshot


def expand(obj: JsonObject, paths: Iterable[str], store: Store) -> JsonObject:
    """A copy of `obj` with each dotted path expanded; a path through a field
    that holds no id of a known object is refused, as Stripe refuses it."""
    result = snapshot(obj)
    for path in paths:
        _expand_path(result, path.split("."), path, store)
    return result


def _expand_path(obj: JsonObject, parts: list[str], path: str, store: Store) -> None:
    name, rest = parts[0], parts[1:]
    if name not in obj:
        raise not_expandable(path)
    value = obj[name]
    if value is None:
        return
    if isinstance(value, str):
        target = store.lookup(value)
        if target is None:
            raise not_expandable(path)
        value = obj[name] = snapshot(target)
    if not isinstance(value, dict) or "id" not in value:
        raise not_expandable(path)
    if rest:
        _expand_path(value, rest, path, store)
