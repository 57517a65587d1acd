"""What to say: the approved words a manager may send into this chat with one tap.

Offered are only materials that may be sent today (approved, approval date reached, not past
``valid_until``: ``Material.compliance_problem``) and are allowed on the chat's channel
(``private`` for a 1:1 chat, ``group`` for a customer group), rendered with the customer's
(or group's) and the manager's names. A link goes out as a tracked radar link minted for this
manager and this customer, so an open shows on the customer's timeline and alerts the manager.

Every material type goes out through ``sendChatMessage``. Text, links (``news``) and quick
replies (their answer) are ready in the panel. A mini program is ready too: its cover is an
``imgUrl`` the WeCom client fetches — an http(s) cover as written, a cover file under
materials/ through the sidebar's public cover route (:data:`COVER_PATH`). An image or a file
needs a WeCom media id, which lives three days: the panel carries the message without it
(``media`` true) and the page asks the server for it on the tap (``handlers.sidebar.media``,
through the media cache), so loading the panel never uploads anything.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from handlers.radar.api import LinkMaker
from scrm.playbook import Material, Playbook, Policy, RenderedMaterial, TemplateError, render_material
from scrm.playbook.suitability import DEFAULT_RULES, SuitabilityRules, group_problem

log = logging.getLogger("handlers.sidebar")

Use = Literal["private", "group"]
SENDABLE = ("text", "link", "quick_reply", "image", "file", "miniprogram")
#: Types whose message needs a media id from the server before the page can send it.
NEEDS_MEDIA = ("image", "file")
#: The public route serving a mini program's cover file (the WeCom client fetches imgUrl).
COVER_PATH = "/sidebar/cover/"


@dataclass(frozen=True)
class Offer:
    """One material ready to send: the JS-SDK messages, in order, and what the page shows."""

    material: str
    title: str
    preview: str
    messages: list[dict[str, Any]]
    link: str = ""  # the tracked link in it ('' for text)
    task: str = ""  # the open task whose suggested script this is ('' for the library)
    kind: str = "text"  # the material's type (the page labels images, files, mini programs)
    media: bool = False  # an image/file message waits for its media id (asked on the tap)


def _short(text: str, chars: int = 14) -> str:
    """A label for an untitled text: its first words (the panel shows the whole text below)."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= chars else line[:chars] + "…"


def offerable(material: Material, use: Use, today: date, rules: SuitabilityRules = DEFAULT_RULES) -> bool:
    """Sendable here today; a product material in a group only up to ``group_max_risk`` (in a
    1:1 chat the customer's own suitability and consent decide: see ``pages``)."""
    return (material.type in SENDABLE and use in material.channels
            and material.compliance_problem(today) is None
            and (use != "group" or group_problem(material, rules) is None))


def material_label(material: Material, context: Mapping[str, str], policy: Policy) -> str:
    """What people call a material: its title, else its link's or mini program's, else its
    first words as this customer would read them (the raw template shows ``{customer.name}``)."""
    named = (material.title or (material.link.title if material.link else "")
             or (material.miniprogram.title if material.miniprogram else "")
             or (material.quick_reply.question if material.quick_reply else ""))
    if named or not material.text:
        return named or material.id
    try:
        return _short(render_material(material, context, policy).text or "") or material.id
    except TemplateError:  # a value this customer lacks: the template's words without it
        return _short(re.sub(r"\{[^}]*\}", "", material.text)) or material.id


def _attachment(r: RenderedMaterial, cover_base: str) -> dict[str, Any] | None:
    """The JS-SDK message of an image, file or mini program (None when it cannot go out here).

    Images and files leave ``mediaid`` to the tap; a mini program's local cover needs the
    public cover route, so without ``cover_base`` (no public URL) it is not offered."""
    if r.image is not None:
        return {"msgtype": "image", "image": {}}
    if r.file is not None:
        return {"msgtype": "file", "file": {}}
    if r.miniprogram is not None:
        mini = r.miniprogram
        cover = mini.cover if mini.cover.startswith(("http://", "https://")) else (
            cover_base + r.id if cover_base else "")
        if not cover:
            return None
        return {"msgtype": "miniprogram",
                "miniprogram": {"appid": mini.appid, "title": mini.title, "imgUrl": cover, "page": mini.page}}
    return None


def _messages(r: RenderedMaterial, cover_base: str) -> list[dict[str, Any]] | None:
    """The material's messages in order (its text first); None when a part cannot be sent."""
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
    if r.type in ("image", "file", "miniprogram"):
        attachment = _attachment(r, cover_base)
        if attachment is None:
            return None
        out.append(attachment)
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
    cover_base: str = ""  # the public cover route's address ('' = local covers cannot go out)
    _seen: set[str] = field(default_factory=set)

    def offer(self, material: Material, *, task: str = "") -> Offer | None:
        """The material as an offer, or None when it may not (or cannot) be sent here."""
        if material.id in self._seen or not offerable(material, self.use, self.today, self.playbook.suitability):
            return None
        try:
            rendered = render_material(material, self.context, self.playbook.policy)
        except TemplateError as exc:  # a value this customer lacks (e.g. no CRM payday)
            log.debug("sidebar: material %s not offered: %s", material.id, exc)
            return None
        # A survey link is one answerable round (handlers.feedback): dated, so a survey sent again
        # on a later day is a new round, not the one already answered or expired.
        occurrence = self.occurrence if material.survey is None else f"{self.occurrence}@{self.today}"
        rendered = self.links.track(rendered, self.sender, customer=self.customer, occurrence=occurrence)
        messages = _messages(rendered, self.cover_base)
        if not messages:
            return None
        self._seen.add(material.id)
        preview = rendered.quick_reply.answer if rendered.quick_reply else (rendered.text or "")
        title = material.title or (rendered.link.title if rendered.link else "") or (
            rendered.miniprogram.title if rendered.miniprogram else "") or (
            rendered.quick_reply.question if rendered.quick_reply else "") or _short(preview) or material.id
        return Offer(material.id, title, preview, messages, rendered.link.url if rendered.link else "", task,
                     kind=material.type, media=material.type in NEEDS_MEDIA)

    def library(self, interests: Iterable[str] = (), audience: Collection[str] | None = None) -> list[Offer]:
        """Every offerable material, those matching the customer's interest tags first; for a
        customer (``audience``: their tags) only the materials whose ``for_tags`` they satisfy.

        A reminder's script is offered with its open task only (a birthday greeting out of the
        blue is worse than none), and welcome messages are the channel's first words, not
        something to say later (a group's welcome neither)."""
        pb = self.playbook
        reserved = {r.script for r in pb.reminders.values() if r.script}
        reserved |= {c.welcome for c in pb.channels.values() if c.welcome} | {pb.default_welcome or ""}
        reserved |= {g.welcome for g in pb.group_types.values() if g.welcome}
        wanted = set(interests)
        ordered = sorted((m for m in pb.materials.values()
                          if m.id not in reserved and (audience is None or m.suits(audience))),
                         key=lambda m: not (wanted & set(m.interest_tags)))
        return [o for o in (self.offer(m) for m in ordered) if o is not None]
