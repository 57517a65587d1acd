"""Request-field readers that validate like WeCom: a bad field becomes 40058 naming the field.

Limits are given in characters (``max_chars``) or UTF-8 bytes (``max_bytes``) because WeCom's
docs mix the two (a remark is 20 chars, a welcome text 4000 bytes) and clients must respect both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from scrm.sandbox.errors import invalid

T = TypeVar("T")
Json = dict[str, Any]


def get_str(
    body: Mapping[str, Any],
    key: str,
    *,
    required: bool = False,
    max_chars: int | None = None,
    max_bytes: int | None = None,
) -> str:
    """A string field ('' when absent); ints are accepted because WeCom accepts them too."""
    value = body.get(key)
    if value is None:
        value = ""
    elif isinstance(value, bool) or not isinstance(value, str | int):
        raise invalid(f"{key} must be a string")
    text = str(value)
    if required and not text:
        raise invalid(f"{key} is required")
    if max_chars is not None and len(text) > max_chars:
        raise invalid(f"{key} exceeds {max_chars} characters")
    if max_bytes is not None and len(text.encode("utf-8")) > max_bytes:
        raise invalid(f"{key} exceeds {max_bytes} bytes")
    return text


def get_int(
    body: Mapping[str, Any],
    key: str,
    default: int,
    *,
    lo: int | None = None,
    hi: int | None = None,
) -> int:
    """An integer field within [lo, hi]; digit strings are accepted (WeCom is lenient here)."""
    value = body.get(key)
    if value is None or value == "":
        number = default
    elif isinstance(value, bool):
        number = int(value)
    elif isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.lstrip("-").isdigit():
        number = int(value)
    else:
        raise invalid(f"{key} must be an integer")
    if lo is not None and number < lo:
        raise invalid(f"{key} must be >= {lo}")
    if hi is not None and number > hi:
        raise invalid(f"{key} must be <= {hi}")
    return number


def get_str_list(body: Mapping[str, Any], key: str, *, max_items: int | None = None) -> list[str]:
    """A list of strings ([] when absent)."""
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid(f"{key} must be a list of strings")
    if max_items is not None and len(value) > max_items:
        raise invalid(f"{key} exceeds {max_items} items")
    return list(value)


def get_list(body: Mapping[str, Any], key: str, *, max_items: int | None = None) -> list[Any]:
    """A list of anything ([] when absent)."""
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid(f"{key} must be a list")
    if max_items is not None and len(value) > max_items:
        raise invalid(f"{key} exceeds {max_items} items")
    return value


def get_obj(body: Mapping[str, Any], key: str, *, required: bool = False) -> Json:
    """A JSON object field ({} when absent)."""
    value = body.get(key)
    if value is None:
        if required:
            raise invalid(f"{key} is required")
        return {}
    if not isinstance(value, dict):
        raise invalid(f"{key} must be an object")
    return value


def dict_items(values: Sequence[Any], key: str) -> list[Json]:
    """Check that every element of a list field is an object."""
    if not all(isinstance(v, dict) for v in values):
        raise invalid(f"{key} must be a list of objects")
    return list(values)


def page(items: Sequence[T], cursor: str, limit: int) -> tuple[list[T], str]:
    """One page of ``items`` from an opaque cursor; next cursor is '' on the last page."""
    if cursor:
        if not cursor.startswith("sbc") or not cursor[3:].isdigit():
            raise invalid("cursor is invalid")
        start = int(cursor[3:])
    else:
        start = 0
    chunk = list(items[start : start + limit])
    end = start + len(chunk)
    return chunk, (f"sbc{end}" if end < len(items) else "")
