"""Channels (渠道活码): one 「联系我」 contact way per ``sop/channels.yaml`` entry.

The channel key is the way's ``state``; WeCom hands it back on every add_external_contact
event, which is how a new customer is matched to the channel's welcome material and tags.
``scrm channels sync`` creates missing tags, creates or updates each way in WeCom and stores
its config_id and QR code in ``channel_way``; an inactive channel's way is deleted.
WeCom cannot change a way between single (type 1) and multi-member (type 2), so such a change
deletes the old way and creates a new one: the printed QR code changes and the sync says so.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.contacts.follows import channel_counts
from handlers.contacts.models import ChannelWay
from handlers.contacts.welcome import WelcomeError, attachment_of
from handlers.tags.api import TagApi, TagCatalogError, ensure
from scrm.adapters.db.engine import dialect_of, table_of, upsert
from scrm.adapters.wecom.errors import ErrCode, WeComClientError, WeComError
from scrm.adapters.wecom.media import MediaError, MediaResolver, Uploader
from scrm.adapters.wecom.models import AddContactWayResponse, ContactWay, GetContactWayResponse, WeComResponse
from scrm.kernel.clock import Clock
from scrm.playbook import VARIABLES, Channel, Playbook, TemplateError, render_material


class ContactWayApi(TagApi, Uploader, Protocol):
    async def add_contact_way(self, way: ContactWay) -> AddContactWayResponse: ...

    async def get_contact_way(self, config_id: str) -> GetContactWayResponse: ...

    async def update_contact_way(self, way: ContactWay) -> WeComResponse: ...

    async def del_contact_way(self, config_id: str) -> WeComResponse: ...


@dataclass(frozen=True)
class SyncResult:
    """What ``scrm channels sync`` did for one channel (or for the tags, key ``*tags*``)."""

    key: str
    action: str  # created | updated | recreated | unchanged | deleted | inactive | error
    config_id: str | None = None
    qr_code: str = ""
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.action != "error"


def contact_way(key: str, channel: Channel, config_id: str | None = None) -> ContactWay:
    """The add_contact_way body (for update: ``config_id`` set, type and scene left out)."""
    single = len(channel.managers) == 1 and channel.department is None
    return ContactWay(
        config_id=config_id,
        type=None if config_id else (1 if single else 2),
        scene=None if config_id else 2,  # 2 = QR code
        remark=channel.name[:30],
        skip_verify=channel.skip_verify,
        state=key,
        user=list(channel.managers) or None,
        party=[channel.department] if channel.department is not None else None,
    )


def way_type(channel: Channel) -> int:
    return 1 if len(channel.managers) == 1 and channel.department is None else 2


def spec_hash(key: str, channel: Channel) -> str:
    """What WeCom holds for the channel, hashed: sync calls WeCom only when it changed."""
    body = contact_way(key, channel).to_body()
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:32]


async def _write(session: AsyncSession, key: str, channel: Channel, *, config_id: str | None, qr_code: str,
                 status: str, now: datetime) -> None:
    row = {"key": key, "name": channel.name, "config_id": config_id, "qr_code": qr_code,
           "spec_hash": spec_hash(key, channel) if status == "active" else "", "status": status, "synced_at": now}
    await session.execute(upsert(dialect_of(session), table_of(ChannelWay), ["key"],
                                 ["name", "config_id", "qr_code", "spec_hash", "status", "synced_at"]), row)


async def _push(wecom: ContactWayApi, key: str, channel: Channel, row: ChannelWay | None) -> tuple[str, str, str]:
    """Make WeCom match the channel; returns (action, config_id, qr_code)."""
    if row is not None and row.config_id and row.status == "active":
        if row.spec_hash == spec_hash(key, channel):
            return "unchanged", row.config_id, row.qr_code
        try:
            current = (await wecom.get_contact_way(row.config_id)).contact_way
            if current.type == way_type(channel):
                await wecom.update_contact_way(contact_way(key, channel, row.config_id))
                return "updated", row.config_id, current.qr_code or row.qr_code
            await wecom.del_contact_way(row.config_id)
            action = "recreated"
        except WeComError as exc:
            if exc.errcode != ErrCode.INVALID_PARAMETER:  # 40058: the way is gone from WeCom
                raise
            action = "recreated"
    else:
        action = "created"
    created = await wecom.add_contact_way(contact_way(key, channel))
    return action, created.config_id, created.qr_code


async def warm_welcome_media(sessions: async_sessionmaker[AsyncSession], wecom: Uploader, playbook: Playbook,
                             clock: Clock, materials_dir: Path) -> list[SyncResult]:
    """Upload the files the channels' welcome materials attach (images, files, mini program
    covers, also those given as URLs), so no welcome waits for an upload or a download."""
    wanted = [c.welcome or playbook.default_welcome for c in playbook.channels.values() if c.active]
    results = []
    for mid in dict.fromkeys(m for m in wanted if m):
        material = playbook.materials.get(mid)
        if material is None or material.type in ("text", "link"):
            continue
        examples = {name: var.example for name, var in VARIABLES.items()}
        try:
            rendered = render_material(material, examples, playbook.policy)
            async with sessions() as session, session.begin():
                media = MediaResolver(session, wecom, clock, materials_dir)
                await attachment_of(rendered, media)
                await media.flush()
        except (TemplateError, WelcomeError, MediaError) as exc:
            results.append(SyncResult(f"welcome {mid}", "error",
                                      message=f"{exc}; welcomes will go out without the attachment"))
            continue
        results.append(SyncResult(f"welcome {mid}", "unchanged", message="attachment uploaded (valid 3 days)"))
    return results


async def sync_channels(sessions: async_sessionmaker[AsyncSession], wecom: ContactWayApi, playbook: Playbook,
                        clock: Clock, materials_dir: Path | None = None) -> list[SyncResult]:
    """Create tags, then create/update/delete every channel's contact way; one result each.
    With ``materials_dir``, also pre-upload the welcome materials' attachments."""
    results: list[SyncResult] = []
    names = sorted({t for c in playbook.channels.values() if c.active for t in c.tags})
    if names:
        try:
            async with sessions() as session, session.begin():
                ids = await ensure(session, wecom, names)
            results.append(SyncResult("*tags*", "unchanged", message=f"{len(ids)} channel tag(s) resolved"))
        except (TagCatalogError, WeComClientError) as exc:
            results.append(SyncResult("*tags*", "error", message=str(exc)))
    async with sessions() as session:
        rows = {r.key: r for r in (await session.scalars(select(ChannelWay))).all()}
    for key, channel in playbook.channels.items():
        row = rows.get(key)
        try:
            if not channel.active:
                results.append(await _retire(sessions, wecom, key, channel, row, clock))
                continue
            action, config_id, qr_code = await _push(wecom, key, channel, row)
            if not qr_code:
                qr_code = (await wecom.get_contact_way(config_id)).contact_way.qr_code
        except WeComClientError as exc:
            results.append(SyncResult(key, "error", message=str(exc)))
            continue
        async with sessions() as session, session.begin():
            await _write(session, key, channel, config_id=config_id, qr_code=qr_code, status="active",
                         now=clock.now())
        note = "the QR code changed: replace printed codes" if action == "recreated" else ""
        results.append(SyncResult(key, action, config_id, qr_code, note))
    for key in sorted(set(rows) - set(playbook.channels)):
        results.append(SyncResult(key, "unchanged", rows[key].config_id, rows[key].qr_code,
                                  "not in sop/channels.yaml any more; its contact way is kept"))
    if materials_dir is not None:
        try:
            results += await warm_welcome_media(sessions, wecom, playbook, clock, materials_dir)
        except WeComClientError as exc:
            results.append(SyncResult("welcome media", "error", message=str(exc)))
    return results


async def _retire(sessions: async_sessionmaker[AsyncSession], wecom: ContactWayApi, key: str, channel: Channel,
                  row: ChannelWay | None, clock: Clock) -> SyncResult:
    if row is None or not row.config_id or row.status != "active":
        return SyncResult(key, "inactive")
    try:
        await wecom.del_contact_way(row.config_id)
    except WeComError as exc:
        if exc.errcode != ErrCode.INVALID_PARAMETER:
            raise
    async with sessions() as session, session.begin():
        await _write(session, key, channel, config_id=row.config_id, qr_code=row.qr_code, status="deleted",
                     now=clock.now())
    return SyncResult(key, "deleted", row.config_id, message="channel inactive: contact way deleted")


@dataclass(frozen=True)
class ChannelRow:
    """One line of ``scrm channels list``."""

    key: str
    name: str
    status: str
    config_id: str | None
    qr_code: str
    counts: dict[str, int]

    @property
    def added(self) -> int:
        return sum(self.counts.values())

    @property
    def churned(self) -> int:
        return self.counts.get("lost", 0)


async def list_channels(session: AsyncSession, playbook: Playbook | None) -> Sequence[ChannelRow]:
    """Channels from the playbook and the database, with their relations by status."""
    rows = {r.key: r for r in (await session.scalars(select(ChannelWay))).all()}
    counts = await channel_counts(session)
    keys = list(playbook.channels) if playbook else []
    keys += sorted(k for k in rows if k not in keys)
    out = []
    for key in keys:
        row = rows.get(key)
        spec = playbook.channels.get(key) if playbook else None
        status = row.status if row else "not synced"
        if spec is None:
            status += " (not in channels.yaml)"
        elif not spec.active:
            status += " (inactive)"
        out.append(ChannelRow(key, spec.name if spec else (row.name if row else ""), status,
                              row.config_id if row else None, row.qr_code if row else "", counts.get(key, {})))
    return out
