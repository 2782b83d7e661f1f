"""Rows into domain types: the one place a repository's row becomes a dataclass.

Repositories select columns named like the fields of the type they return,
so a row converts by name; the few fields that need a conversion (an enum
from its text, a tuple from an array) or that are no column at all are
given by the caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


def from_record(cls: type[T], row: Mapping[str, Any], **given: Any) -> T:
    """A `cls` whose fields are the row's columns of the same names, except
    those in `given`."""
    values = {name: given[name] if name in given else row[name] for name in _names(cls)}
    return cls(**values)


@cache
def _names(cls: type[DataclassInstance]) -> tuple[str, ...]:
    # Read per row on every hold and slot read: worked out once a type.
    return tuple(f.name for f in fields(cls))
