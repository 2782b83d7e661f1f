"""Which methods a path answers, as the OpenAPI document says: the `Allow`
header of a 405 and the answer to OPTIONS (RFC 9110 §9.3.7, §15.5.6).

The router alone only knows the first route whose path matches, so a 405 on
`/v1/holds/{id}` would name GET and forget DELETE; the document knows them
all, and is what clients read."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

_ORDER = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class MethodTable:
    def __init__(self, document: Callable[[], dict[str, Any]]) -> None:
        self._document = document
        self._paths: list[tuple[re.Pattern[str], frozenset[str]]] | None = None

    def _table(self) -> list[tuple[re.Pattern[str], frozenset[str]]]:
        if self._paths is None:
            table = []
            for template, item in self._document().get("paths", {}).items():
                pattern = re.sub(r"\\\{[^}/]+\\\}", "[^/]+", re.escape(template))
                # HEAD is not answered (405), so not listed.
                methods = {m.upper() for m in item if m.upper() in _ORDER}
                table.append((re.compile(f"^{pattern}$"), frozenset(methods | {"OPTIONS"})))
            self._paths = table
        return self._paths

    def allowed(self, path: str) -> str | None:
        """The `Allow` value for `path`; None if the document has no such path."""
        methods: set[str] = set()
        for pattern, answered in self._table():
            if pattern.match(path):
                methods |= answered
        return ", ".join(m for m in _ORDER if m in methods) if methods else None
