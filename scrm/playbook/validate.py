"""Turn pydantic validation errors into ``file:line: key.path: message`` issues.

Pydantic reports a location tuple that mixes data keys with type names and stringified
dict keys; we walk the actual data alongside it so the path matches what the admin wrote
(``steps[2].at``, ``channels.payroll-card``) and the line comes from the YAML source. For an
unknown key we also name the keys that are allowed, with a "did you mean" for typos.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from .issues import KeyPart, PlaybookIssue
from .yamlsrc import SourceFile


def _normalize(data: Any, loc: Sequence[Any]) -> tuple[list[KeyPart], bool]:
    """Map a pydantic loc onto the data; returns the path and whether the key itself is bad."""
    path: list[KeyPart] = []
    node = data
    for part in loc:
        if part == "[key]":
            return path, True
        if isinstance(node, list) and isinstance(part, int):
            path.append(part)
            node = node[part] if 0 <= part < len(node) else None
        elif isinstance(node, dict):
            match = next((k for k in node if str(k) == str(part)), None)
            path.append(str(part))
            node = node[match] if match is not None else None
        elif node is None and isinstance(part, str) and not any(c in part for c in "[]("):
            path.append(part)  # a missing nested key: keep its name
        # else: a union/validator label such as "function-after[...]": not part of the data
    return path, False


def _unwrap(tp: Any) -> list[Any]:
    """The model classes a field annotation may hold (through Optional, list, dict, Annotated)."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(tp) for m in _unwrap(arg)]
    if origin in (list, tuple, set, frozenset):
        return [m for arg in typing.get_args(tp) for m in _unwrap(arg)]
    if origin is dict:
        return _unwrap(typing.get_args(tp)[1])
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    return []


def allowed_keys(model: type[BaseModel], loc: Sequence[Any]) -> list[str] | None:
    """The keys a mapping at ``loc`` accepts, following the model's fields (best effort)."""
    current: list[type[BaseModel]] = [model]
    for part in loc:
        if not isinstance(part, str) or not current:
            continue  # list index or dict key: the element type is already in ``current``
        nxt: list[type[BaseModel]] = []
        for m in current:
            for name, info in m.model_fields.items():
                if part in (name, info.alias):
                    nxt.extend(_unwrap(info.annotation))
        if nxt:
            current = nxt
    if len(current) != 1:
        return None
    return [info.alias or name for name, info in current[0].model_fields.items()]


def _message(err: Any, model: type[BaseModel] | None) -> str:
    kind = err["type"]
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        key = str(err["loc"][-1])
        allowed = allowed_keys(model, err["loc"][:-1]) if model else None
        if not allowed:
            return "unknown key"
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"unknown key; {hint}allowed: {', '.join(allowed)}"
    if kind in ("value_error", "assertion_error"):
        return str(err.get("ctx", {}).get("error") or err["msg"])
    value = err.get("input")
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"expected a mapping (key: value lines), got {_describe(value)}"
    if kind == "list_type":
        return f"expected a list (- item lines, or [a, b]), got {_describe(value)}"
    msg = str(err["msg"])
    msg = msg[:1].lower() + msg[1:]
    if value is None:
        msg += " (the value is empty)"
    elif isinstance(value, str | int | float | bool) and len(repr(value)) <= 40:
        msg += f" (got {value!r})"
    return msg


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value) if len(repr(value)) <= 40 else type(value).__name__


def validation_issues(
    source: SourceFile,
    exc: ValidationError,
    *,
    base: tuple[KeyPart, ...] = (),
    model: type[BaseModel] | None = None,
) -> list[PlaybookIssue]:
    """Issues for every error in ``exc``; ``base`` is where the validated data sits in the file."""
    data = source.data
    for part in base:
        if isinstance(data, list) and isinstance(part, int):
            data = data[part]
        else:
            data = next(v for k, v in data.items() if str(k) == str(part))
    out = []
    for err in exc.errors():
        path, bad_key = _normalize(data, err["loc"])
        message = _message(err, model)
        if bad_key:
            message = f"bad key: {message}"
        out.append(source.issue((*base, *path), message))
    return out
