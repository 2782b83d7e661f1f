"""Touches to the OpenAPI document FastAPI builds, so that it says exactly
what the gateway takes."""

from __future__ import annotations

from typing import Any


def without_null_parameters(document: dict[str, Any]) -> None:
    """An optional query or header parameter is absent or a string: FastAPI
    documents `X | None` as "X or null", and a header or query string cannot
    be null (a client sending the text "null" is refused)."""
    for item in document.get("paths", {}).values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                choices = schema.get("anyOf")
                if not choices:
                    continue
                kept = [c for c in choices if c.get("type") != "null"]
                if len(kept) == 1 and len(kept) < len(choices):
                    del schema["anyOf"]
                    schema.update(kept[0])
