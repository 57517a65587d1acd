"""Plaintext callback XML as WeCom writes it (PROTOCOL.md §3), before encryption.

Strings go in CDATA, integers bare, lists of strings as ``<Item>`` children (MemChangeList,
WeCom 4.8+). Nested structures (SelectedItems) are passed as ready XML via :class:`Raw`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from scrm.sandbox.records import Json


@dataclass(frozen=True)
class Raw:
    """Pre-built XML inserted as is."""

    xml: str


Value = str | int | Sequence[str] | Raw


def cdata(text: str) -> str:
    """CDATA that survives a literal ``]]>`` in the text (split across two sections)."""
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def element(name: str, value: Value) -> str:
    if isinstance(value, Raw):
        inner = value.xml
    elif isinstance(value, bool):
        inner = str(int(value))
    elif isinstance(value, int):
        inner = str(value)
    elif isinstance(value, str):
        inner = cdata(value)
    else:
        inner = "".join(f"<Item>{cdata(v)}</Item>" for v in value)
    return f"<{name}>{inner}</{name}>"


def build(fields: Sequence[tuple[str, Value]]) -> str:
    """``<xml>`` with the fields in the given order."""
    return "<xml>" + "".join(element(k, v) for k, v in fields) + "</xml>"


def header(corp_id: str, create_time: int, event: str, *, from_user: str = "sys") -> list[tuple[str, Value]]:
    """The common event header: ToUserName, FromUserName, CreateTime, MsgType, Event."""
    return [
        ("ToUserName", corp_id),
        ("FromUserName", from_user),
        ("CreateTime", create_time),
        ("MsgType", "event"),
        ("Event", event),
    ]


def selected_items(items: Sequence[Json]) -> Raw:
    """``SelectedItems`` of a template_card_event from [{"question_key", "option_ids": [...]}]."""
    parts = []
    for item in items:
        options = "".join(f"<OptionId>{cdata(str(o))}</OptionId>" for o in item.get("option_ids", []))
        parts.append(
            f"<SelectedItem><QuestionKey>{cdata(str(item.get('question_key', '')))}</QuestionKey>"
            f"<OptionIds>{options}</OptionIds></SelectedItem>"
        )
    return Raw("".join(parts))
