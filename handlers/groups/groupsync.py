"""``scrm groups pools sync``: refresh the group registry from WeCom, then create or update each
group type's QR pool (「加入群聊」) and its group welcome template.

Unlike the handlers, these run outside any event: every WeCom call is made directly (the
results — config_id, qr_code, template_id — are needed right away) and each write is a short
transaction after the calls it depends on.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.contacts.api import WelcomeError, attachment_of, date_context, member_name
from handlers.groups import lifetime, pools, registry
from handlers.groups.models import GroupChat, GroupPool
from handlers.radar.api import LinkMaker
from scrm.adapters.db.engine import dialect_of, table_of, upsert
from scrm.adapters.wecom.api import WeComClient
from scrm.adapters.wecom.errors import ErrCode, WeComClientError, WeComError
from scrm.adapters.wecom.media import MediaError, MediaResolver
from scrm.adapters.wecom.models_groups import GroupWelcomeTemplate
from scrm.kernel.clock import Clock
from scrm.kernel.scheduler import Scheduler
from scrm.playbook import GroupType, Playbook, TemplateError, render_material
from scrm.playbook.quiet import local_day


@dataclass(frozen=True)
class Result:
    """One line of a sync report."""

    subject: str
    action: str  # refreshed | created | updated | unchanged | skipped | error
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.action != "error"


async def refresh_groups(sessions: async_sessionmaker[AsyncSession], wecom: WeComClient,
                         playbook: Playbook | None, clock: Clock, scheduler: Scheduler | None = None) -> Result:
    """Re-read every customer group (groupchat/list + get), classify it, mirror it."""
    chat_ids = [ref.chat_id async for ref in wecom.iter_group_chats()]
    for chat_id in chat_ids:
        chat = (await wecom.get_group_chat(chat_id)).group_chat
        async with sessions() as session, session.begin():
            old = await registry.get_group(session, chat_id)
            old_type = old.group_type if old else None
            group_type = playbook.classify_group(chat.name, chat.owner, chat.chat_id) if playbook else old_type
            await registry.write_full(session, chat, group_type, clock.now())
            spec = playbook.group_types.get(group_type) if playbook and group_type else None
            if scheduler and spec and spec.lifetime_days and group_type != old_type and chat.create_time:
                await lifetime.schedule(session, scheduler, chat_id, datetime.fromtimestamp(chat.create_time, UTC),
                                        spec.lifetime_days)
    listed = set(chat_ids)
    async with sessions() as session, session.begin():
        active = (await session.scalars(select(GroupChat.chat_id).where(GroupChat.status == "active"))).all()
        gone = [c for c in active if c not in listed]
        for chat_id in gone:
            await registry.dismiss(session, chat_id, clock.now())
    extra = f", {len(gone)} no longer in WeCom (marked dismissed)" if gone else ""
    return Result("registry", "refreshed", f"{len(chat_ids)} group(s){extra}")


async def sync_pool(sessions: async_sessionmaker[AsyncSession], wecom: WeComClient, type_key: str,
                    spec: GroupType, clock: Clock) -> Result:
    """Create or update one group type's join way over the groups that have room."""
    assert spec.qr_pool is not None
    async with sessions() as session:
        row = await session.get(GroupPool, type_key)
        found = await pools.candidates(session, type_key)
    plan = pools.plan_pool(row.chat_ids if row else [], found, size=spec.qr_pool.size, cap=spec.member_cap)
    if plan.needs_room:
        return Result(type_key, "error", f"no {spec.name} group has room (cap {spec.member_cap}); "
                                         "create one, then run the sync again")
    config_id = row.config_id if row else None
    action = "updated"
    if config_id:
        try:
            await wecom.update_join_way(pools.join_way(type_key, spec, plan.chat_ids, config_id))
        except WeComError as exc:
            if exc.errcode != ErrCode.INVALID_PARAMETER:  # 40058: the way is gone; make a new one
                raise
            config_id = None
    if not config_id:
        config_id = (await wecom.add_join_way(pools.join_way(type_key, spec, plan.chat_ids))).config_id
        action = "created"
    qr_code = (await wecom.get_join_way(config_id)).join_way.qr_code
    now = clock.now()
    values = {"group_type": type_key, "config_id": config_id, "qr_code": qr_code, "state": pools.pool_state(type_key),
              "chat_ids": plan.chat_ids, "needs_room": False, "synced_at": now, "updated_at": now}
    async with sessions() as session, session.begin():
        await _upsert_pool(session, values)
    return Result(type_key, action, f"{len(plan.chat_ids)} group(s): {', '.join(plan.chat_ids)}; QR {qr_code}")


async def _upsert_pool(session: AsyncSession, values: dict[str, Any]) -> None:
    defaults: dict[str, Any] = {"config_id": None, "qr_code": "", "state": "", "chat_ids": [], "needs_room": False,
                "welcome_template_id": None, "welcome_hash": "", "synced_at": None, "updated_at": None}
    row = {**defaults, **values}
    await session.execute(upsert(dialect_of(session), table_of(GroupPool), ["group_type"],
                                 [k for k in values if k != "group_type"]), row)


async def sync_welcome(sessions: async_sessionmaker[AsyncSession], wecom: WeComClient, playbook: Playbook,
                       type_key: str, spec: GroupType, clock: Clock, materials_dir: Path,
                       links: LinkMaker | None = None) -> Result:
    """Register the type's group welcome material as a WeCom group welcome template.

    With ``links``, a link material goes out as a radar link: one template serves every joiner,
    so the token names no customer (WeCom OAuth identifies who opens it) and the sender is the
    type's owner when it has exactly one. Tokens are deterministic: an unchanged material
    keeps its template.
    """
    material = playbook.materials.get(spec.welcome or "")
    if material is None:
        return Result(f"{type_key} welcome", "error", f"welcome material {spec.welcome!r} not found in materials/")
    today = local_day(playbook, clock.now())
    problem = material.compliance_problem(today)
    if problem is not None:  # never register stale content; the existing template is left as is
        return Result(f"{type_key} welcome", "skipped", problem)
    async with sessions() as session:
        owner_names = [n for n in [await member_name(session, u) for u in spec.classify.owners] if n]
    try:
        rendered = render_material(material, _group_context(spec, today, owner_names), playbook.policy)
    except TemplateError as exc:
        return Result(f"{type_key} welcome", "error", f"material {material.id!r}: {exc}")
    if links is not None:
        sender = spec.classify.owners[0] if len(spec.classify.owners) == 1 else ""
        rendered = links.track(rendered, sender, occurrence=f"group-welcome:{type_key}")
    async with sessions() as session, session.begin():
        row = await session.get(GroupPool, type_key)
        media = MediaResolver(session, wecom, clock, materials_dir)
        try:
            attachment = await attachment_of(rendered, media)
        except (WelcomeError, MediaError) as exc:
            return Result(f"{type_key} welcome", "error", f"material {material.id!r}: {exc}")
        body: dict[str, Any] = {"text": {"content": rendered.text}} if rendered.text else {}
        if attachment is not None:
            body[attachment["msgtype"]] = attachment[attachment["msgtype"]]
        digest = hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:32]
        if row is not None and row.welcome_template_id and row.welcome_hash == digest:
            return Result(f"{type_key} welcome", "unchanged", row.welcome_template_id)
        template = GroupWelcomeTemplate.model_validate(body)
        template_id = (await wecom.add_group_welcome_template(template)).template_id
        if row is not None and row.welcome_template_id:
            with contextlib.suppress(WeComError):  # already deleted by someone: nothing to clean up
                await wecom.call("externalcontact/group_welcome_template/del",
                                 {"template_id": row.welcome_template_id})
        await media.flush()
        await _upsert_pool(session, {"group_type": type_key, "welcome_template_id": template_id,
                                     "welcome_hash": digest})
    return Result(f"{type_key} welcome", "created", template_id)


def _group_context(spec: GroupType, today: date, owner_names: list[str]) -> dict[str, str]:
    # One template serves every group of the type: group.name is the type's name, and the
    # manager is the type's only owner when it has one, else "群主" (the group owner).
    manager = owner_names[0] if len(owner_names) == 1 else "群主"
    context = {"group.name": spec.name, "manager.name": manager, **date_context(today)}
    if spec.payday:
        context["group.payday"] = str(spec.payday)
    return context


async def sync_all(sessions: async_sessionmaker[AsyncSession], wecom: WeComClient, playbook: Playbook,
                   clock: Clock, materials_dir: Path, scheduler: Scheduler | None = None,
                   links: LinkMaker | None = None) -> list[Result]:
    """Registry refresh, then every pool and group welcome template; errors are reported, not raised."""
    results: list[Result] = []
    try:
        results.append(await refresh_groups(sessions, wecom, playbook, clock, scheduler))
    except WeComClientError as exc:
        return [Result("registry", "error", str(exc))]
    for type_key, spec in playbook.group_types.items():
        try:
            if spec.qr_pool is not None:
                results.append(await sync_pool(sessions, wecom, type_key, spec, clock))
            if spec.welcome:
                results.append(await sync_welcome(sessions, wecom, playbook, type_key, spec, clock, materials_dir,
                                                          links))
        except WeComClientError as exc:
            results.append(Result(type_key, "error", str(exc)))
    return results
