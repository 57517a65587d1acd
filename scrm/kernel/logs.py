"""Structured logging: one JSON object per line, with the current event's context attached.

``log_context(inbox_id=..., ...)`` adds fields to every record logged inside it (contextvars,
so concurrent tasks keep their own). Secrets never reach here: settings hold them as SecretStr
and the API client masks tokens in URLs. Customers' identifiers in structured fields
(:data:`PERSONAL`) are written as pseudonyms unless ``[log] personal_data = "show"``: the same
pseudonym as the message trail's export (:func:`pseudonym`), so an auditor can still follow one
customer through the log and an export without either showing who it is.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("scrm_log_context", default=None)


def _current() -> dict[str, Any]:
    return _context.get() or {}

# Structured fields that name a customer (never a member: staff ids are how operators work).
PERSONAL = frozenset({"external_userid", "external_user_id", "customer", "unionid", "crm_id", "mobile"})


def pseudonym(value: str) -> str:
    """A stable stand-in for a customer's identifier (the same one always gives the same)."""
    return "anon:" + hashlib.sha256(value.encode()).hexdigest()[:16]


def _masked(key: str, value: Any, mask: bool) -> Any:
    if not mask or key not in PERSONAL or value in (None, ""):
        return value
    if isinstance(value, list | tuple | set):
        return [pseudonym(str(v)) for v in value]
    return pseudonym(str(value))


# Attributes every LogRecord has; anything else was passed through ``extra=``.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    token = _context.set({**_current(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


class JsonFormatter(logging.Formatter):
    def __init__(self, *, mask_personal: bool = True) -> None:
        super().__init__()
        self.mask_personal = mask_personal

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        data.update({k: _masked(k, v, self.mask_personal) for k, v in _current().items()})
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = _masked(key, value, self.mask_personal)
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self, *, mask_personal: bool = True) -> None:
        super().__init__()
        self.mask_personal = mask_personal

    def format(self, record: logging.LogRecord) -> str:
        extras = {k: _masked(k, v, self.mask_personal) for k, v in _current().items()}
        extras.update({k: _masked(k, v, self.mask_personal) for k, v in record.__dict__.items()
                       if k not in _STANDARD and not k.startswith("_")})
        tail = " ".join(f"{k}={v}" for k, v in extras.items())
        line = f"{record.levelname[0]} {record.name}: {record.getMessage()}" + (f"  [{tail}]" if tail else "")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup_logging(level: str = "INFO", fmt: str = "json", *, personal_data: str = "mask") -> None:
    handler = logging.StreamHandler(sys.stderr)
    mask = personal_data != "show"
    handler.setFormatter(JsonFormatter(mask_personal=mask) if fmt == "json" else TextFormatter(mask_personal=mask))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's access log is one line per callback: keep it, but at our level of detail.
    logging.getLogger("aiohttp.access").setLevel("WARNING")
