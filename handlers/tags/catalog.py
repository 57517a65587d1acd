"""The corp tag catalog: ``"group/tag"`` names ↔ WeCom tag ids, mirrored in ``tag_group``/``tag``.

The playbook (channels, SOPs, the CRM tag map) speaks in names such as ``产品持有/代发``;
WeCom's ``mark_tag`` wants ids. This module resolves names from the local mirror, refreshes the
mirror from ``get_corp_tag_list`` and creates missing tags with ``add_corp_tag``.

Creating is synchronous on purpose (not through the outbox): ``mark_tag`` needs the new ids
right away. ``scrm channels sync`` creates every channel tag ahead of time; at event time
:func:`ensure` is only the fallback.

Every function that talks to WeCom makes all of its calls **before** its first write to the
session: SQLite holds the database write lock from the first write until commit, and nobody
else may write while we wait on the network.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.tags.models import FollowTag, Tag, TagGroup
from scrm.adapters.db.engine import dialect_of, table_of, upsert
from scrm.adapters.wecom.errors import WeComError
from scrm.adapters.wecom.models import (
    AddCorpTagRequest,
    AddCorpTagResponse,
    CorpTagGroup,
    GetCorpTagListResponse,
    NewTag,
)

log = logging.getLogger("handlers.tags.catalog")

# add_corp_tag: "tag name already exists in the group" (someone created it since we looked).
TAG_NAME_EXISTS = 40071


class TagApi(Protocol):
    """The two WeCom calls the catalog needs (``scrm.adapters.wecom.api.WeComClient`` has them)."""

    async def get_corp_tag_list(self, *, tag_ids: Sequence[str] = (),
                                group_ids: Sequence[str] = ()) -> GetCorpTagListResponse: ...

    async def add_corp_tag(self, req: AddCorpTagRequest) -> AddCorpTagResponse: ...


class TagCatalogError(Exception):
    """Tags could not be resolved or created; the message names them and why."""


class MissingTagsError(TagCatalogError):
    """Tags are neither in the mirror nor in WeCom (and creating them was not allowed)."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        super().__init__("tags not found in WeCom: " + ", ".join(self.names)
                         + " (run `scrm channels sync` to create them)")


def split_name(name: str) -> tuple[str, str]:
    """``"产品持有/代发"`` → ``("产品持有", "代发")``; anything else is a :class:`TagCatalogError`."""
    group, sep, tag = name.partition("/")
    if not sep or not group or not tag or "/" in tag:
        raise TagCatalogError(f'tag {name!r} must be written "group/tag", e.g. "产品持有/代发"')
    return group, tag


# ---------------------------------------------------------------------------------- reading


# Read for every contact added through a channel: built once, on the tables.
_TAG, _GROUP = table_of(Tag), table_of(TagGroup)
_LIVE_TAGS_IN_GROUPS = (select(_GROUP.c.name, _TAG.c.name, _TAG.c.tag_id)
                        .join(_GROUP, _TAG.c.group_id == _GROUP.c.group_id)
                        .where(_GROUP.c.name.in_(bindparam("groups", expanding=True)), _TAG.c.deleted.is_(False),
                               _GROUP.c.deleted.is_(False)))


async def lookup(session: AsyncSession, names: Iterable[str]) -> dict[str, str]:
    """Ids of the live tags among ``names`` found in the local mirror (missing ones are absent)."""
    wanted = {split_name(n): n for n in names}
    if not wanted:
        return {}
    rows = await session.execute(_LIVE_TAGS_IN_GROUPS, {"groups": sorted({g for g, _ in wanted})})
    found: dict[str, str] = {}
    for group, tag, tag_id in rows.all():
        name = wanted.get((group, tag))
        if name is not None:
            found[name] = tag_id
    return found


async def names_of(session: AsyncSession, tag_ids: Iterable[str]) -> dict[str, str]:
    """``tag_id → "group/tag"`` for display (deleted tags included, so history still reads)."""
    ids = set(tag_ids)
    if not ids:
        return {}
    rows = await session.execute(
        select(Tag.tag_id, TagGroup.name, Tag.name).join(TagGroup, Tag.group_id == TagGroup.group_id)
        .where(Tag.tag_id.in_(ids))
    )
    return {tag_id: f"{group}/{tag}" for tag_id, group, tag in rows.all()}


def index_of(groups: Iterable[CorpTagGroup]) -> dict[tuple[str, str], str]:
    """``(group name, tag name) → tag id`` of the live tags in a WeCom listing."""
    return {(g.group_name, t.name): t.id for g in groups if not g.deleted for t in g.tag if not t.deleted}


# ---------------------------------------------------------------------------------- writing


async def write_groups(session: AsyncSession, groups: Sequence[CorpTagGroup], *, full: bool = False,
                       complete_groups: bool = True) -> list[str]:
    """Mirror a WeCom listing into the session; returns the ids of tags that became deleted.

    ``full``: the listing is every group of the corp, so anything else is deleted.
    ``complete_groups``: each listed group comes with all its tags (a by-group read), so its
    other tags are deleted; False for by-tag reads and add_corp_tag replies, which list only
    some tags of a group.
    """
    dialect = dialect_of(session)
    group_rows = [{"group_id": g.group_id, "name": g.group_name, "order": g.order, "deleted": g.deleted}
                  for g in groups]
    tag_rows = [{"tag_id": t.id, "group_id": g.group_id, "name": t.name, "order": t.order,
                 "deleted": g.deleted or t.deleted} for g in groups for t in g.tag]
    if group_rows:
        # owner (crm | manager) is ours, not WeCom's: never overwritten by a refresh.
        await session.execute(upsert(dialect, table_of(TagGroup), ["group_id"],
                                     ["name", "order", "deleted"]), group_rows)
    if tag_rows:
        await session.execute(upsert(dialect, table_of(Tag), ["tag_id"],
                                     ["group_id", "name", "order", "deleted"]), tag_rows)
    listed_tags = {r["tag_id"] for r in tag_rows}
    gone: list[str] = [t.id for g in groups for t in g.tag if g.deleted or t.deleted]
    stale = select(Tag.tag_id).where(Tag.deleted.is_(False))
    if full:
        gone += [t for t in (await session.scalars(stale)).all() if t not in listed_tags]
        listed_groups = {g.group_id for g in groups}
        live_groups = (await session.scalars(select(TagGroup.group_id).where(TagGroup.deleted.is_(False)))).all()
        dead_groups = [g for g in live_groups if g not in listed_groups]
        if dead_groups:
            await session.execute(update(TagGroup).where(TagGroup.group_id.in_(dead_groups)).values(deleted=True))
    elif complete_groups and groups:
        in_groups = stale.where(Tag.group_id.in_([g.group_id for g in groups]))
        gone += [t for t in (await session.scalars(in_groups)).all() if t not in listed_tags]
    await mark_tags_deleted(session, gone)
    return gone


async def mark_tags_deleted(session: AsyncSession, tag_ids: Sequence[str]) -> None:
    """Tags deleted in WeCom: flag them and drop them from every follow (WeCom strips them too)."""
    if not tag_ids:
        return
    await session.execute(update(Tag).where(Tag.tag_id.in_(tag_ids)).values(deleted=True))
    await session.execute(delete(FollowTag).where(FollowTag.tag_id.in_(tag_ids)))


async def mark_group_deleted(session: AsyncSession, group_id: str) -> list[str]:
    """A deleted tag group takes its tags with it (WeCom sends no per-tag deletes)."""
    await session.execute(update(TagGroup).where(TagGroup.group_id == group_id).values(deleted=True))
    ids = list((await session.scalars(select(Tag.tag_id).where(Tag.group_id == group_id))).all())
    await mark_tags_deleted(session, ids)
    return ids


# ---------------------------------------------------------------------------------- ensuring


async def refresh(session: AsyncSession, wecom: TagApi) -> list[CorpTagGroup]:
    """Re-read every corp tag from WeCom and mirror it (the answer to any doubt)."""
    groups = (await wecom.get_corp_tag_list()).tag_group
    await write_groups(session, groups, full=True)
    return groups


async def _create(wecom: TagApi, groups: Sequence[CorpTagGroup],
                  missing: Sequence[tuple[str, str]]) -> tuple[list[CorpTagGroup], bool]:
    """add_corp_tag per group; returns the created groups and whether someone raced us."""
    by_group: dict[str, list[str]] = {}
    for group, tag in missing:
        by_group.setdefault(group, []).append(tag)
    live = {g.group_name: g.group_id for g in groups if not g.deleted}
    created: list[CorpTagGroup] = []
    raced = False
    for group_name, tag_names in by_group.items():
        group_id = live.get(group_name)
        req = AddCorpTagRequest(group_id=group_id, group_name=None if group_id else group_name,
                                tag=[NewTag(name=t) for t in tag_names])
        try:
            created.append((await wecom.add_corp_tag(req)).tag_group)
        except WeComError as exc:
            if exc.errcode != TAG_NAME_EXISTS:
                names = ", ".join(f"{group_name}/{t}" for t in tag_names)
                raise TagCatalogError(f"cannot create tags {names} in WeCom: {exc}") from None
            raced = True  # created by someone else since our listing: read it again
            continue
        log.warning("created missing corp tags", extra={"group": group_name, "tags": tag_names})
    return created, raced


async def ensure(session: AsyncSession, wecom: TagApi, names: Sequence[str], *,
                 create: bool = True) -> dict[str, str]:
    """Ids for every name: from the mirror, else from WeCom, else created (when ``create``).

    All WeCom calls happen before the first write. Raises :class:`MissingTagsError` (``create``
    False) or :class:`TagCatalogError` (WeCom refused to create them).
    """
    unique = list(dict.fromkeys(names))
    found = await lookup(session, unique)
    missing = [n for n in unique if n not in found]
    if not missing:
        return found
    groups = (await wecom.get_corp_tag_list()).tag_group
    index = index_of(groups)
    absent = [split_name(n) for n in missing if split_name(n) not in index]
    created: list[CorpTagGroup] = []
    if absent:
        if not create:
            raise MissingTagsError([f"{g}/{t}" for g, t in absent])
        created, raced = await _create(wecom, groups, absent)
        if raced:
            groups = (await wecom.get_corp_tag_list()).tag_group
    # -- writes from here on
    await write_groups(session, groups, full=True)
    if created:
        await write_groups(session, created, complete_groups=False)
    index = index_of([*groups, *created])
    for name in missing:
        tag_id = index.get(split_name(name))
        if tag_id is not None:
            found[name] = tag_id
    still = [n for n in unique if n not in found]
    if still:
        raise TagCatalogError("WeCom did not return ids for tags " + ", ".join(still))
    return found


def resolve_ids(mapping: Mapping[str, str], names: Sequence[str]) -> list[str]:
    """Ids of ``names`` in their order, without repeats."""
    return list(dict.fromkeys(mapping[n] for n in names))
