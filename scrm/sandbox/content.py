"""Validation of message content shared by welcome messages, mass sends and moments."""

from __future__ import annotations

from typing import Any

from scrm.sandbox.errors import invalid
from scrm.sandbox.params import Json, get_obj, get_str
from scrm.sandbox.state import SandboxState

ATTACHMENT_TYPES = ("image", "link", "miniprogram", "video", "file")


def check_text(body: Json, *, max_bytes: int) -> Json:
    """``text: {content}`` with a byte limit; returns the object ({} when absent)."""
    text = get_obj(body, "text")
    if text:
        get_str(text, "content", max_bytes=max_bytes)
    return text


def check_attachments(state: SandboxState, values: list[Any], now: float, *, max_items: int = 9) -> list[Json]:
    """Welcome / mass-send attachments: ≤9 of image, link, miniprogram, video, file."""
    if len(values) > max_items:
        raise invalid(f"attachments exceed {max_items} items")
    checked: list[Json] = []
    for index, item in enumerate(values):
        where = f"attachments[{index}]"
        if not isinstance(item, dict):
            raise invalid(f"{where} must be an object")
        msgtype = get_str(item, "msgtype", required=True)
        if msgtype not in ATTACHMENT_TYPES:
            raise invalid(f"{where}.msgtype {msgtype!r} is not one of {', '.join(ATTACHMENT_TYPES)}")
        payload = get_obj(item, msgtype, required=True)
        if msgtype == "image":
            media_id = get_str(payload, "media_id")
            if media_id:
                state.require_media(media_id, now, f"{where}.image.media_id")
            elif not get_str(payload, "pic_url"):
                raise invalid(f"{where}.image needs media_id or pic_url")
        elif msgtype == "link":
            get_str(payload, "title", required=True, max_bytes=128)
            get_str(payload, "desc", max_bytes=512)
            get_str(payload, "url", required=True)
        elif msgtype == "miniprogram":
            get_str(payload, "title", required=True, max_bytes=64)
            state.require_media(get_str(payload, "pic_media_id", required=True), now, f"{where}.pic_media_id")
            get_str(payload, "appid", required=True)
            get_str(payload, "page", required=True)
        else:
            state.require_media(get_str(payload, "media_id", required=True), now, f"{where}.media_id")
        checked.append(item)
    return checked
