"""How a core record appears in the shells' output: one rule that REST and GraphQL both apply,
so a record's shape is declared once (its dataclass in the core) and each shell converts it
mechanically instead of restating it.

The rule, field by field in declaration order: ``<name>_ms`` (epoch milliseconds) is published
as ``<name>_at``, a time; a UUID as an id; everything else as it is; ``None`` stays ``None``. Each
shell says what a time and an id are for it (REST: ISO strings and strings; GraphQL: datetimes
and ``ID``) and spells the names its way (REST camelCases them).
"""

from __future__ import annotations

import dataclasses
import functools
import operator
import types
import typing
import uuid
from collections.abc import Callable
from typing import Any


def wire_name(field: str) -> str:
    """``created_ms`` -> ``created_at``; other names unchanged."""
    return f"{field.removesuffix('_ms')}_at" if field.endswith("_ms") else field


def wire_values(
    record: Any, *, time: Callable[[int], Any], ident: Callable[[uuid.UUID], Any]
) -> dict[str, Any]:
    """The fields of the dataclass instance ``record`` under their wire names, converted."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        if value is not None:
            if f.name.endswith("_ms"):
                value = time(value)
            elif isinstance(value, uuid.UUID):
                value = ident(value)
        out[wire_name(f.name)] = value
    return out


def wire_types(cls: type, *, time: type, ident: type) -> dict[str, Any]:
    """The same rule over the field types of the dataclass ``cls`` (for a shell's schema)."""
    hints = typing.get_type_hints(cls)
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if f.name.endswith("_ms"):
            hint = _replace(hint, int, time)
        out[wire_name(f.name)] = _replace(hint, uuid.UUID, ident)
    return out


def _replace(hint: Any, old: type, new: type) -> Any:
    """``hint`` with ``old`` replaced by ``new``, also inside ``X | None``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return functools.reduce(
            operator.or_, [new if a is old else a for a in typing.get_args(hint)]
        )
    return new if hint is old else hint
