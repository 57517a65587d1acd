"""The sidebar's routes behind the sign-in: the panels of a 1:1 chat and of a customer group
(HTML for the toolbar, the same data as JSON), recording a send the page made, and settling a
task from beside the chat.

Every route checks the signed-in member against the chat first (``access``): an id the page
sends is never trusted alone. A send is recorded in one transaction — the customer's timeline,
the relation's last contact, the radar's send count, the console's audit log — so a send is
never half recorded.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from functools import partial
from typing import Any, Literal
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.compliance.api import (
    CATEGORY_NAMES,
    CustomerFacts,
    consent_rows,
    decisions,
    facts_of,
    is_product,
    record_chat_send,
    refusal,
)
from handlers.console.api import record_audit, remote_of
from handlers.contacts.api import Customer, record_contact
from handlers.crm.api import CrmCustomer
from handlers.radar.api import LinkMaker, record_send
from handlers.sidebar import customer, group
from handlers.sidebar.access import customer_access, group_access, well_formed
from handlers.sidebar.media import media_id_of
from handlers.sidebar.reading import read_customer
from handlers.sidebar.say import COVER_PATH, NEEDS_MEDIA, Use, offerable
from handlers.sidebar.settings import sidebar_settings
from handlers.sidebar.texts import BAD_ID, BUTTON_LABELS, NOT_YOUR_GROUP, NOT_YOURS, STATUS_LABELS
from handlers.sidebar.web import reader_of, refuse, render, runtime_of, viewer_of
from handlers.sop.api import PRESSABLE, SopTask, press_task, record_script_sent, script_of
from handlers.timeline.api import note
from scrm.adapters.wecom.media import MediaError, MediaResolver
from scrm.playbook import Playbook
from scrm.playbook.quiet import local_day

ROLE = "manager"  # how the console's audit log names a sidebar user
_dumps = partial(json.dumps, ensure_ascii=False)


@dataclass(frozen=True)
class Scene:
    """The moment a request is served: the playbook in force, the bank's day and time zone."""

    playbook: Playbook
    now: datetime
    today: date
    tz: tzinfo
    links: LinkMaker
    cover_base: str  # the public cover route's address, for mini programs' local covers


def scene_of(request: web.Request) -> Scene | web.Response:
    runtime = runtime_of(request)
    playbook = runtime.playbook.current
    if playbook is None:
        return refuse(request, 503, "no playbook loaded; the sidebar needs one (sop/, materials/)")
    now = runtime.clock.now()
    return Scene(playbook, now, local_day(playbook, now), ZoneInfo(playbook.policy.timezone),
                 LinkMaker(runtime.settings), runtime.settings.server.public_url.rstrip("/") + COVER_PATH)


def json_reply(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=_dumps)


async def _customer(request: web.Request) -> customer.CustomerPanels | web.Response:
    ext = request.match_info["external_userid"]
    if not well_formed(ext):
        return refuse(request, 400, BAD_ID)
    scene = scene_of(request)
    if isinstance(scene, web.Response):
        return scene
    runtime, viewer, db = runtime_of(request), viewer_of(request), reader_of(request)
    read = await read_customer(db, ext)
    access = read.access(viewer.userid)
    if access is None:
        return refuse(request, 403, NOT_YOURS)
    panels = await customer.gather(db, scene.playbook, access, read, viewer_name=viewer.name, links=scene.links,
                                   today=scene.today, now=scene.now, tz=scene.tz,
                                   history_items=sidebar_settings(runtime.settings).timeline_items,
                                   cover_base=scene.cover_base)
    said = (await consent_rows(db, [ext])).get(ext, {})
    facts = facts_of(dict(read.attributes or {}), read.crm_updated_at, said, scene.playbook.suitability)
    # Product materials only for a customer whose assessment allows them and who consents.
    offers = [o for o in panels.offers if _unsuitable(scene, o.material, facts) is None]
    rules = scene.playbook.suitability
    consent = [customer.Consent(c, CATEGORY_NAMES.get(c, c), facts.consents.get(c, rules.consent_default),
                                c in facts.consents) for c in rules.categories]
    return dataclasses.replace(panels, offers=offers, consent=consent)


async def customer_facts(db: AsyncSession, playbook: Playbook, external_userid: str) -> CustomerFacts:
    """The customer's CRM record and consent, for the suitability check."""
    record_id = await customer.crm_id_of(db, await db.get(Customer, external_userid), external_userid)
    record = await db.get(CrmCustomer, record_id) if record_id else None
    said = (await consent_rows(db, [external_userid])).get(external_userid, {})
    return facts_of(dict(record.attributes or {}) if record is not None else {},
                    record.updated_at if record is not None else None, said, playbook.suitability)


def _unsuitable(scene: Scene, material_id: str, facts: CustomerFacts) -> str | None:
    material = scene.playbook.materials.get(material_id)
    if material is None or not is_product(material):
        return None
    return refusal(material, facts, scene.today, scene.playbook.suitability)


async def customer_page(request: web.Request) -> web.Response:
    panels = await _customer(request)
    if isinstance(panels, web.Response):
        return panels
    return render(request, "customer.html", {"p": panels})


async def customer_data(request: web.Request) -> web.Response:
    panels = await _customer(request)
    return panels if isinstance(panels, web.Response) else json_reply(dataclasses.asdict(panels))


async def _group(request: web.Request) -> group.GroupPanels | web.Response:
    chat_id = request.match_info["chat_id"]
    if not well_formed(chat_id):
        return refuse(request, 400, BAD_ID)
    scene = scene_of(request)
    if isinstance(scene, web.Response):
        return scene
    viewer, db = viewer_of(request), reader_of(request)
    chat = await group_access(db, viewer.userid, chat_id)
    if chat is None:
        return refuse(request, 403, NOT_YOUR_GROUP)
    return await group.gather(db, scene.playbook, chat, viewer=viewer.userid, viewer_name=viewer.name,
                              links=scene.links, today=scene.today, now=scene.now, tz=scene.tz,
                              cover_base=scene.cover_base)


async def group_page(request: web.Request) -> web.Response:
    panels = await _group(request)
    return panels if isinstance(panels, web.Response) else render(request, "group.html", {"p": panels})


async def group_data(request: web.Request) -> web.Response:
    panels = await _group(request)
    return panels if isinstance(panels, web.Response) else json_reply(dataclasses.asdict(panels))


@dataclass(frozen=True)
class _SentBody:
    material: str
    link: str  # the tracked link in it, '' for none
    media_id: str  # an image's or file's media id, '' for none
    task: str  # the open task whose script this is ('' for a material from the library)


async def _sent_body(request: web.Request) -> _SentBody | web.Response:
    """What the page reports it sent."""
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("material"), str) or not all(
            isinstance(body.get(k, ""), str) for k in ("link", "mediaid", "task")):
        return refuse(request, 400, 'body must be JSON {"material": "<id>", "link": "<tracked link or empty>", '
                                    '"mediaid": "<media id of an image or file, else empty>", '
                                    '"task": "<task id when it is the task\'s script, else empty>"}')
    return _SentBody(body["material"], body.get("link", ""), body.get("mediaid", ""), body.get("task", ""))


async def _task_of_send(db: AsyncSession, request: web.Request, scene: Scene, task_id: str, *, target: str,
                        material_id: str, managers: tuple[str, ...]) -> SopTask | web.Response:
    """The task whose script the page says it sent: this chat's own, and that material its script."""
    task = await db.get(SopTask, task_id) if well_formed(task_id) else None
    if task is None or task.target != target or task.userid not in managers:
        return refuse(request, 404, "no such task among this chat's tasks you may settle")
    if script_of(task, scene.playbook) != material_id:
        return refuse(request, 400, f"material {material_id!r} is not this task's script")
    return task


def _check_send(request: web.Request, scene: Scene, use: Use, material_id: str, link: str, *, sender: str,
                customer_id: str | None) -> web.Response | None:
    """Refuse a send of what may not be sent here, or with a link that is not this chat's own."""
    material = scene.playbook.materials.get(material_id)
    if material is None or not offerable(material, use, scene.today, scene.playbook.suitability):
        why = material.compliance_problem(scene.today) if material is not None else None
        return refuse(request, 400, why or f"material {material_id!r} may not be sent in this chat")
    if material.type != "link":
        return refuse(request, 400, f"a {material.type} material carries no link") if link else None
    claims = scene.links.claims_of(link) if link else None
    if claims is None or (claims.material, claims.sender, claims.customer) != (material_id, sender, customer_id):
        return refuse(request, 400, "link is not a tracked link minted here for this chat")
    return None


async def _sent(request: web.Request, kind: Literal["customer", "group"], target: str) -> web.Response:
    """The page put a material into the chat (``ww.sendChatMessage`` succeeded): record it — the
    radar's send, a timeline entry, the audit log, and for a customer, contact."""
    if not well_formed(target):
        return refuse(request, 400, BAD_ID)
    scene, parsed = scene_of(request), await _sent_body(request)
    if isinstance(scene, web.Response) or isinstance(parsed, web.Response):
        return scene if isinstance(scene, web.Response) else parsed  # type: ignore[return-value]
    material_id, link, media_id = parsed.material, parsed.link, parsed.media_id
    runtime, viewer = runtime_of(request), viewer_of(request)
    async with runtime.sessions() as db, db.begin():
        if kind == "customer":
            access = await customer_access(db, viewer.userid, target)
            managers = access.managers if access is not None else ()
        else:
            chat = await group_access(db, viewer.userid, target)
            managers = (viewer.userid,) if chat is not None else ()
        if not managers:
            return refuse(request, 403, NOT_YOURS if kind == "customer" else NOT_YOUR_GROUP)
        task: SopTask | None = None
        if parsed.task:
            found = await _task_of_send(db, request, scene, parsed.task, target=target, material_id=material_id,
                                        managers=managers)
            if isinstance(found, web.Response):
                return found
            task = found
        refused = _check_send(request, scene, "private" if kind == "customer" else "group", material_id, link,
                              sender=viewer.userid, customer_id=target if kind == "customer" else None)
        if refused is not None:
            return refused
        material = scene.playbook.materials[material_id]
        # Offered only to customers its for_tags suits (a task's script goes with its task).
        if (kind == "customer" and task is None and material.for_tags is not None
                and not material.suits((await read_customer(db, target)).customer_tags())):
            return refuse(request, 400, f"material {material_id!r} is not for this customer (its for_tags)")
        checks: list[str] = []
        if kind == "customer" and is_product(material):
            facts = await customer_facts(db, scene.playbook, target)
            why = _unsuitable(scene, material_id, facts)
            if why is not None:
                return refuse(request, 400, why)
            checks = decisions(material, facts, scene.playbook.suitability)
        if material.type in NEEDS_MEDIA or media_id:
            # The id the page sent must be this material's file (the cache's id, as handed out).
            resolver = MediaResolver(db, runtime.wecom, runtime.clock, runtime.settings.playbook.materials_dir)
            try:
                expected = await media_id_of(resolver, material) if material.type in NEEDS_MEDIA else ""
            except MediaError as exc:
                return refuse(request, 502, f"media of {material_id!r} unavailable: {exc}")
            if media_id != expected:
                return refuse(request, 400, "mediaid is not this material's media id (ask for it again)"
                              if expected else f"a {material.type} material carries no mediaid")
            await resolver.flush()
        if link:
            await record_send(db, scene.links, link, scene.now)
        if task is not None:  # the task's words reached the chat: the SOP effect page counts it delivered
            record_script_sent(task, scene.now)
        await note(db, None, kind, target, scene.now, "sidebar.send",
                   {"material": material_id, "title": material.title or material_id, "manager": viewer.userid,
                    "link": link, **({"mediaid": media_id} if media_id else {}),
                    **({"task": task.task_id} if task is not None else {})})
        if kind == "customer":  # a message the manager sent into the chat is contact (no-contact reminder)
            await record_contact(db, target, scene.now, userid=viewer.userid)
        record_audit(db, scene.now, viewer.userid, ROLE, "sidebar_send", f"{kind}:{target}", remote_of(request),
                     material=material_id, **({"mediaid": media_id} if media_id else {}),
                     **({"task": task.task_id} if task is not None else {}))
        # The message trail: what the page put into the chat, as far as the server knows it (the
        # material, its tracked link, its media id); the checks are the ones just passed.
        await record_chat_send(db, runtime.settings, at=scene.now, sender=viewer.userid, audience=target,
                               audience_type=kind, material=material,
                               content={"material": material_id, "link": link, "mediaid": media_id},
                               decisions=["offered in the sidebar: allowed on this channel",
                                          "sent by the manager from their own chat"
                                          + (" (their customer)" if kind == "customer" else " (their group)"),
                                          *checks])
    return json_reply({"recorded": True, "material": material_id, "at": scene.now.isoformat()})


async def customer_sent(request: web.Request) -> web.Response:
    return await _sent(request, "customer", request.match_info["external_userid"])


async def group_sent(request: web.Request) -> web.Response:
    return await _sent(request, "group", request.match_info["chat_id"])


async def task_action(request: web.Request) -> web.Response:
    """Done / snooze / not relevant from the sidebar: the same state change as the card's button,
    and the card in WeCom shows it (``handlers.sop.api.press_task``)."""
    task_id, button = request.match_info["task_id"], request.match_info["button"]
    if button not in BUTTON_LABELS or not well_formed(task_id):
        return refuse(request, 400, f"button must be one of {', '.join(BUTTON_LABELS)}")
    runtime, viewer = runtime_of(request), viewer_of(request)
    now = runtime.clock.now()
    async with runtime.sessions() as db, db.begin():
        task = await db.get(SopTask, task_id)
        access = await customer_access(db, viewer.userid, task.target) if task is not None else None
        if task is None or access is None or task.userid not in access.managers:
            return refuse(request, 404, "no such task among this customer's tasks you may settle")
        if task.status not in PRESSABLE:
            return refuse(request, 409, f"task already {STATUS_LABELS.get(task.status, task.status)}")
        status = await press_task(db, runtime.outbox, runtime.scheduler, task_id=task_id, button=button,
                                  agent_id=runtime.settings.wecom.agent_id, now=now)
        record_audit(db, now, viewer.userid, ROLE, f"task_{button}", f"task:{task_id}", remote_of(request),
                     customer=task.target)
    runtime.outbox.wake()  # the card's update goes out now, not at the next poll
    return json_reply({"task_id": task_id, "status": status, "status_label": STATUS_LABELS.get(status or "", "")})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/customer/{external_userid}", customer_page)
    app.router.add_get("/data/customer/{external_userid}", customer_data)
    app.router.add_post("/customer/{external_userid}/sent", customer_sent)
    app.router.add_get("/group/{chat_id}", group_page)
    app.router.add_get("/data/group/{chat_id}", group_data)
    app.router.add_post("/group/{chat_id}/sent", group_sent)
    app.router.add_post("/task/{task_id}/{button}", task_action)
