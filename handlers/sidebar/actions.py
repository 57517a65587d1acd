"""The sidebar's routes beside sending and tasks: editing a customer's tags, recording what the
customer said about a category of marketing (consent), the media id of an image or file about to
be sent, and a mini program's cover (fetched by the WeCom client).

Like every sidebar route, the chat is checked against the signed-in member first (``access``);
the POSTs pass the gate's CSRF check (the toolbar page's token in ``X-CSRF-Token``).
"""

from __future__ import annotations

from aiohttp import web

from handlers.compliance.api import record_consent
from handlers.console.api import record_audit, remote_of
from handlers.contacts.api import Customer
from handlers.crm.api import crm_settings
from handlers.sidebar import tagedit
from handlers.sidebar.access import customer_access, group_access, well_formed
from handlers.sidebar.customer import crm_id_of, tag_names
from handlers.sidebar.media import MEDIA_FIELD, cover_file, media_id_of
from handlers.sidebar.pages import ROLE, json_reply, scene_of
from handlers.sidebar.say import NEEDS_MEDIA, Use, offerable
from handlers.sidebar.texts import BAD_EDIT_ID, BAD_ID, NOT_YOUR_GROUP, NOT_YOURS
from handlers.sidebar.web import refuse, runtime_of, viewer_of
from handlers.tags.api import TagCatalogError
from scrm.adapters.wecom.media import MediaError, MediaResolver

EDIT_ID_MAX = 64


async def _json_body(request: web.Request) -> object:
    try:
        return await request.json()
    except (ValueError, UnicodeDecodeError):
        return None


async def customer_tags(request: web.Request) -> web.Response:
    """``POST /sidebar/customer/{id}/tags`` ``{"add": [...], "remove": [...], "edit": "<tap id>"}``:
    set or remove manager-owned tags (``handlers.sidebar.tagedit``); answers the customer's tags."""
    ext = request.match_info["external_userid"]
    if not well_formed(ext):
        return refuse(request, 400, BAD_ID)
    scene = scene_of(request)
    if isinstance(scene, web.Response):
        return scene
    edit = tagedit.parse_edit(await _json_body(request))
    if isinstance(edit, str):
        return refuse(request, 400, edit)
    if not well_formed(edit.edit_id) or len(edit.edit_id) > EDIT_ID_MAX:
        return refuse(request, 400, BAD_EDIT_ID)
    why = tagedit.refusal(scene.playbook, edit.add + edit.remove)
    if why is not None:
        return refuse(request, 400, why)
    runtime, viewer = runtime_of(request), viewer_of(request)
    async with runtime.sessions() as db, db.begin():
        access = await customer_access(db, viewer.userid, ext)
        if access is None:
            return refuse(request, 403, NOT_YOURS)
        relation = access.managers[0]
        crm_id = await crm_id_of(db, await db.get(Customer, ext), ext)
        try:
            applied = await tagedit.apply(db, runtime.outbox, runtime.wecom, scene.playbook, edit, viewer=viewer.userid,
                                          relation=relation, external_userid=ext, crm_id=crm_id,
                                          report=bool(crm_settings(runtime.settings).webhook_url), now=scene.now)
        except TagCatalogError as exc:
            return refuse(request, 502, f"WeCom tag catalog: {exc}")
        if applied.added or applied.removed:
            record_audit(db, scene.now, viewer.userid, ROLE, "sidebar_tags", f"customer:{ext}", remote_of(request),
                         relation=relation, added=applied.added, removed=applied.removed)
        tags = await tag_names(db, access.managers, ext)
    if applied.added or applied.removed:
        runtime.outbox.wake()  # mark_tag goes out now, not at the next poll
    return json_reply({"relation": relation, "added": applied.added, "removed": applied.removed,
                       "repeated": applied.repeated, "tags": tags})


async def customer_consent(request: web.Request) -> web.Response:
    """``POST /sidebar/customer/{id}/consent`` ``{"category": "wealth", "granted": false}``: the
    customer told their manager they do (not) want this kind of marketing. Recorded as said now,
    by this manager; from then on the SOPs, the re-check before sending and the panel's offers
    honour it (the latest statement wins, see ``handlers.compliance.consent``)."""
    ext = request.match_info["external_userid"]
    if not well_formed(ext):
        return refuse(request, 400, BAD_ID)
    scene = scene_of(request)
    if isinstance(scene, web.Response):
        return scene
    body = await _json_body(request)
    categories = scene.playbook.suitability.categories
    if not isinstance(body, dict) or body.get("category") not in categories or not isinstance(
            body.get("granted"), bool):
        return refuse(request, 400, f'body must be JSON {{"category": one of {", ".join(categories)}, '
                                    '"granted": true|false}')
    category, granted = str(body["category"]), bool(body["granted"])
    runtime, viewer = runtime_of(request), viewer_of(request)
    async with runtime.sessions() as db, db.begin():
        if await customer_access(db, viewer.userid, ext) is None:
            return refuse(request, 403, NOT_YOURS)
        await record_consent(db, ext, category, granted, source="sidebar", at=scene.now, by=viewer.userid)
        record_audit(db, scene.now, viewer.userid, ROLE, "sidebar_consent", f"customer:{ext}", remote_of(request),
                     category=category, granted=granted)
    return json_reply({"category": category, "granted": granted, "at": scene.now.isoformat()})


async def _media(request: web.Request, use: Use, target: str) -> web.Response:
    """``POST /sidebar/{customer|group}/{id}/media`` ``{"material": id}``: the media id to send
    an image or file material with (``{"mediaid": …}``), from the media cache."""
    if not well_formed(target):
        return refuse(request, 400, BAD_ID)
    scene = scene_of(request)
    if isinstance(scene, web.Response):
        return scene
    body = await _json_body(request)
    material_id = body.get("material") if isinstance(body, dict) else None
    if not isinstance(material_id, str):
        return refuse(request, 400, 'body must be JSON {"material": "<id>"}')
    material = scene.playbook.materials.get(material_id)
    if material is None or not offerable(material, use, scene.today, scene.playbook.suitability) or \
            material.type not in NEEDS_MEDIA:
        why = material.compliance_problem(scene.today) if material is not None else None
        return refuse(request, 400, why or f"material {material_id!r} is no image or file to send in this chat")
    runtime, viewer = runtime_of(request), viewer_of(request)
    async with runtime.sessions() as db:
        if use == "private":
            allowed = await customer_access(db, viewer.userid, target) is not None
        else:
            allowed = await group_access(db, viewer.userid, target) is not None
        if not allowed:
            return refuse(request, 403, NOT_YOURS if use == "private" else NOT_YOUR_GROUP)
        resolver = MediaResolver(db, runtime.wecom, runtime.clock, runtime.settings.playbook.materials_dir)
        try:
            media_id = await media_id_of(resolver, material)
        except MediaError as exc:
            return refuse(request, 502, f"media of {material_id!r} unavailable: {exc}")
        await db.rollback()  # end the reads before writing (SQLite cannot upgrade an old read)
        async with db.begin():
            await resolver.flush()
    return json_reply({"material": material_id, "msgtype": material.type, MEDIA_FIELD: media_id})


async def customer_media(request: web.Request) -> web.Response:
    return await _media(request, "private", request.match_info["external_userid"])


async def group_media(request: web.Request) -> web.Response:
    return await _media(request, "group", request.match_info["chat_id"])


async def cover(request: web.Request) -> web.StreamResponse:
    """``GET /sidebar/cover/{material}``: a mini program's cover file, for the WeCom client that
    shows the card (it fetches ``imgUrl`` without the manager's session). Only the cover of a
    material that may be sent today is served; anything else is 404."""
    scene = scene_of(request)
    if isinstance(scene, web.Response):
        return scene
    material = scene.playbook.materials.get(request.match_info["material"])
    path = None
    if material is not None and material.compliance_problem(scene.today) is None:
        path = cover_file(runtime_of(request).settings.playbook.materials_dir, material)
    if path is None:
        raise web.HTTPNotFound(text="no such cover")
    return web.FileResponse(path, headers={"Cache-Control": "public, max-age=3600"})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/customer/{external_userid}/tags", customer_tags)
    app.router.add_post("/customer/{external_userid}/consent", customer_consent)
    app.router.add_post("/customer/{external_userid}/media", customer_media)
    app.router.add_post("/group/{chat_id}/media", group_media)
    app.router.add_get("/cover/{material}", cover)
