"""What to say: the approved words a manager may send into this chat with one tap.

Offered are only materials that may be sent today (approved, approval date reached, not past
``valid_until``: ``Material.compliance_problem``) and are allowed on the chat's channel
(``private`` for a 1:1 chat, ``group`` for a customer group), rendered with the customer's
(or group's) and the manager's names. A link goes out as a tracked radar link minted for this
manager and this customer, so an open shows on the customer's timeline and alerts the manager.

Types the JS-SDK sends without an upload — text, link (``news``), quick replies (their answer) —
are offered; images, files and mini programs need a media id the page does not have yet, so
they stay out (not a compliance decision: a later slice uploads them).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from handlers.radar.api import LinkMaker
from scrm.playbook import Material, Playbook, RenderedMaterial, TemplateError, render_material

log = logging.getLogger("handlers.sidebar")

Use = Literal["private", "group"]
SENDABLE = ("text", "link", "quick_reply")


@dataclass(frozen=True)
class Offer:
    """One material ready to send: the JS-SDK messages, in order, and what the page shows."""

    material: str
    title: str
    preview: str
    messages: list[dict[str, Any]]
    link: str = ""  # the tracked link in it ('' for text)
    task: str = ""  # the open task whose suggested script this is ('' for the library)


def _short(text: str, chars: int = 14) -> str:
    """A label for an untitled text: its first words (the panel shows the whole text below)."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= chars else line[:chars] + "…"


def offerable(material: Material, use: Use, today: date) -> bool:
    return (material.type in SENDABLE and use in material.channels
            and material.compliance_problem(today) is None)


def _messages(r: RenderedMaterial) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if r.type == "quick_reply" and r.quick_reply is not None:
        return [{"msgtype": "text", "text": {"content": r.quick_reply.answer}}]
    if r.text:
        out.append({"msgtype": "text", "text": {"content": r.text}})
    if r.link is not None:
        news: dict[str, Any] = {"link": r.link.url, "title": r.link.title, "desc": r.link.desc}
        if r.link.cover and r.link.cover.startswith(("http://", "https://")):
            news["imgUrl"] = r.link.cover  # a local cover file would need an upload
        out.append({"msgtype": "news", "news": news})
    return out


@dataclass
class Offers:
    """Builds the offers of one chat (one manager, one customer or group)."""

    playbook: Playbook
    links: LinkMaker
    sender: str
    use: Use
    today: date
    context: Mapping[str, str]
    customer: str | None = None
    occurrence: str = "sidebar"
    _seen: set[str] = field(default_factory=set)

    def offer(self, material: Material, *, task: str = "") -> Offer | None:
        """The material as an offer, or None when it may not (or cannot) be sent here."""
        if material.id in self._seen or not offerable(material, self.use, self.today):
            return None
        try:
            rendered = render_material(material, self.context, self.playbook.policy)
        except TemplateError as exc:  # a value this customer lacks (e.g. no CRM payday)
            log.debug("sidebar: material %s not offered: %s", material.id, exc)
            return None
        rendered = self.links.track(rendered, self.sender, customer=self.customer, occurrence=self.occurrence)
        messages = _messages(rendered)
        if not messages:
            return None
        self._seen.add(material.id)
        preview = rendered.quick_reply.answer if rendered.quick_reply else (rendered.text or "")
        title = material.title or (rendered.link.title if rendered.link else "") or (
            rendered.quick_reply.question if rendered.quick_reply else "") or _short(preview)
        return Offer(material.id, title, preview, messages, rendered.link.url if rendered.link else "", task)

    def library(self, interests: Iterable[str] = ()) -> list[Offer]:
        """Every offerable material, those matching the customer's interest tags first.

        A reminder's script is offered with its open task only (a birthday greeting out of the
        blue is worse than none), and welcome messages are the channel's first words, not
        something to say later (a group's welcome neither)."""
        pb = self.playbook
        reserved = {r.script for r in pb.reminders.values() if r.script}
        reserved |= {c.welcome for c in pb.channels.values() if c.welcome} | {pb.default_welcome or ""}
        reserved |= {g.welcome for g in pb.group_types.values() if g.welcome}
        wanted = set(interests)
        ordered = sorted((m for m in pb.materials.values() if m.id not in reserved),
                         key=lambda m: not (wanted & set(m.interest_tags)))
        return [o for o in (self.offer(m) for m in ordered) if o is not None]
