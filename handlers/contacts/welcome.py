"""Welcome messages: a channel's material rendered for one new customer, as a
``send_welcome_msg`` body.

The WelcomeCode is valid for 20 seconds and only once, so the action goes out on the outbox's
priority lane with ``not_after`` = event time + 20 s. What keeps a welcome from being built
at all (no material, a template variable without a value) raises :class:`WelcomeError` naming
the material and the reason. An attachment that cannot be prepared in time (a cover URL that
does not download, an upload refused) does not cost the customer the greeting: the text goes
out alone and the problem is reported in :attr:`Welcome.notes`.

A link material goes out as a tracked radar link (``{public_url}/r/{token}``) minted for this
send (the manager, the customer, the welcome code), so the manager learns when the customer
opens it; :meth:`Welcome.record_sends` counts the send for the open rate, in the caller's
transaction. Images given as a URL go out as WeCom's ``pic_url`` (no download, no upload on
the 20-second path); local files and mini-program covers (WeCom wants a ``pic_media_id``) are
uploaded. The body keeps each uploaded id's source file (stripped before the call): when WeCom
no longer knows a cached id (``40007``: a restored database), the outbox uploads the file again
and resends at once, inside the window (:func:`install_welcome_media`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.radar.api import LinkMaker, record_send
from scrm.adapters.wecom.media import SOURCES, MediaError, MediaResolver, StaleMediaRefresher, source
from scrm.kernel.config import Settings
from scrm.playbook import Material, Playbook, RenderedMaterial, TemplateError, render_material

if TYPE_CHECKING:
    from scrm.kernel.outbox import Outbox

# WeCom: "企业仅可在收到相关事件后20秒内调用，且只可调用一次" (PROTOCOL.md §4).
WELCOME_WINDOW = timedelta(seconds=20)
SEND_WELCOME = "externalcontact/send_welcome_msg"


class WelcomeError(Exception):
    """A welcome message cannot be built; the message says which material and why."""


@dataclass(frozen=True)
class Tracking:
    """Who greets whom: the welcome's link is minted for this one send."""

    links: LinkMaker
    sender: str
    customer: str
    occurrence: str


def welcome_tracking(settings: Settings, sender: str, customer: str, state: str, welcome_code: str) -> Tracking:
    """Tracking for one welcome; the occurrence ``welcome:<channel>@<code>`` groups radar stats
    per channel (``scrm radar stats --by-step``) and makes every welcome a distinct send."""
    return Tracking(LinkMaker(settings), sender, customer, f"welcome:{state or 'default'}@{welcome_code}")


@dataclass
class Welcome:
    """A send_welcome_msg body, and what had to be left out of it."""

    body: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    tracking: Tracking | None = None
    material: Material | None = None  # what it says (the message trail records its sign-off)
    tracked_links: list[str] = field(default_factory=list)

    async def record_sends(self, session: AsyncSession, at: datetime) -> None:
        """Count the tracked links in the body as sent (the open rate's denominator)."""
        if self.tracking is not None:
            for link in self.tracked_links:
                await record_send(session, self.tracking.links, link, at)


def welcome_deadline(create_time: int) -> datetime:
    """Until when the WelcomeCode of an event created at ``create_time`` is usable."""
    return datetime.fromtimestamp(create_time, UTC) + WELCOME_WINDOW


def welcome_material(playbook: Playbook, state: str, today: date) -> Material:
    """The channel's welcome material, else the file's default; a clear error when absent.

    A channel material that may not be sent ``today`` (expired, not yet approved) gives way to
    the default welcome when that one may; when neither may, the welcome is skipped with the
    reason (the manager is asked to greet by hand): a compliance date never sends stale content.
    """
    channel = playbook.channels.get(state)
    wanted = (channel.welcome if channel else None) or playbook.default_welcome
    if wanted is None:
        where = f"channel {state!r}" if channel else "sop/channels.yaml"
        raise WelcomeError(f"{where} names no welcome material and there is no default_welcome")
    material = playbook.welcome_for(state)
    if material is None:
        raise WelcomeError(f"welcome material {wanted!r} not found in materials/")
    problem = material.compliance_problem(today)
    if problem is None:
        return material
    fallback = playbook.materials.get(playbook.default_welcome or "")
    if fallback is not None and fallback.id != material.id and fallback.compliance_problem(today) is None:
        return fallback
    raise WelcomeError(problem)


def context_for(customer_name: str, remark: str, manager_name: str, today: date) -> dict[str, str]:
    """Template variables available when a customer has just been added."""
    return {
        "customer.name": customer_name,
        "customer.remark": remark,
        "manager.name": manager_name,
        **date_context(today),
    }


def date_context(today: date) -> dict[str, str]:
    return {"date.today": f"{today.month}月{today.day}日", "date.month": f"{today.month}月"}


def render(material: Material, context: Mapping[str, str], playbook: Playbook) -> RenderedMaterial:
    try:
        return render_material(material, context, playbook.policy)
    except TemplateError as exc:
        raise WelcomeError(f"material {material.id!r}: {exc}") from None


async def welcome_body(code: str, material: Material, context: Mapping[str, str], playbook: Playbook,
                       media: MediaResolver, tracking: Tracking | None = None) -> Welcome:
    """The send_welcome_msg body for ``code``; may upload files (WeCom calls, before any write).

    With ``tracking``, a link material's URL is replaced by a tracked link for this send.
    """
    rendered = render(material, context, playbook)
    if tracking is not None:
        rendered = tracking.links.track(rendered, tracking.sender, customer=tracking.customer,
                                        occurrence=tracking.occurrence)
    welcome = Welcome({"welcome_code": code}, tracking=tracking, material=material)
    if rendered.text:
        welcome.body["text"] = {"content": rendered.text}
    try:
        attachment = await attachment_of(rendered, media)
    except MediaError as exc:
        if not rendered.text:
            raise WelcomeError(f"material {material.id!r}: {exc}") from None
        welcome.notes.append(f"material {material.id!r}: attachment left out: {exc}")
        attachment = None
    if attachment is not None:
        sources = media_sources(rendered)
        welcome.body["attachments"] = [{**attachment, SOURCES: sources} if sources else attachment]
        if tracking is not None and attachment["msgtype"] == "link":
            welcome.tracked_links.append(str(attachment["link"]["url"]))
    if len(welcome.body) == 1:
        raise WelcomeError(f"material {material.id!r} has nothing to send")
    return welcome


def install_welcome_media(outbox: Outbox, materials_dir: Path) -> None:
    """Let the outbox strip the media sources from welcome bodies and, on ``40007``, upload the
    files again and resend once."""
    hooks = StaleMediaRefresher(materials_dir)
    outbox.preparers[SEND_WELCOME] = hooks.prepare
    outbox.refreshers[SEND_WELCOME] = hooks.refresh


def media_sources(rendered: RenderedMaterial) -> dict[str, dict[str, str]]:
    """Where each uploaded media id of :func:`attachment_of` comes from ({} when none is)."""
    kind = rendered.type
    if kind == "image" and rendered.image is not None and not rendered.image.url:
        return {"media_id": source(rendered.image.path or "", "image")}
    if kind == "file" and rendered.file is not None:
        return {"media_id": source(rendered.file.path or rendered.file.url or "", "file")}
    if kind == "miniprogram" and rendered.miniprogram is not None:
        return {"pic_media_id": source(rendered.miniprogram.cover, "image")}
    return {}


async def attachment_of(rendered: RenderedMaterial, media: MediaResolver) -> dict[str, Any] | None:
    """The material's attachment as WeCom's ``{"msgtype": kind, kind: {...}}`` (None for text).

    Raises :class:`MediaError` when a file cannot be read, downloaded or uploaded, and
    :class:`WelcomeError` when the material cannot be an attachment at all.
    """
    kind, mid = rendered.type, rendered.id
    if kind == "text":
        return None
    if kind == "link" and rendered.link is not None:
        link = rendered.link
        item: dict[str, Any] = {"title": link.title, "url": link.url}
        if link.desc:
            item["desc"] = link.desc
        if link.cover:
            item["picurl"] = link.cover
        return {"msgtype": "link", "link": item}
    if kind == "image" and rendered.image is not None:
        image = rendered.image
        if image.url:
            return {"msgtype": "image", "image": {"pic_url": image.url}}
        return {"msgtype": "image", "image": {"media_id": await media.media_id(image.path or "", "image")}}
    if kind == "file" and rendered.file is not None:
        spec = rendered.file
        media_id = (await media.media_id(spec.path, "file") if spec.path
                    else await media.media_id_for_url(spec.url or "", "file"))
        return {"msgtype": "file", "file": {"media_id": media_id}}
    if kind == "miniprogram" and rendered.miniprogram is not None:
        mini = rendered.miniprogram
        # WeCom wants an uploaded pic_media_id: a cover given as a URL is downloaded first.
        pic = (await media.media_id_for_url(mini.cover, "image") if mini.cover.startswith(("http://", "https://"))
               else await media.media_id(mini.cover, "image"))
        return {"msgtype": "miniprogram",
                "miniprogram": {"title": mini.title, "pic_media_id": pic, "appid": mini.appid, "page": mini.page}}
    raise WelcomeError(f"material {mid!r} of type {kind} cannot be sent to a customer")
