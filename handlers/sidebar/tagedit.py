"""Editing a customer's tags from the 1:1 panel.

Which tags a manager may set is the playbook's tag map (``sop/tags.yaml``): the tags listed in
``owner: manager`` groups. The ``owner: crm`` groups are the CRM's — its sync sets *and removes*
them, so a manager's edit would be undone the next night — and are read-only here, as is any
tag the tag map does not list.

An edit is applied to one relation (tags in WeCom belong to a manager's relation with the
customer): the viewer's own, or for a team lead the first team member's (``CustomerAccess``).
In one transaction it queues ``externalcontact/mark_tag`` in the outbox (the idempotency key
carries the page's edit id, so a repeated request queues nothing twice), mirrors the new tags
locally (WeCom sends no callback for an API edit), reports the manager-owned change to the CRM
through its write-back (``report_tag_changes``: the same diff a client edit produces), and
notes it on the customer's timeline and in the audit log. An edit is not a contact: the
customer saw nothing, so ``last_contact_at`` does not move.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.contacts.api import set_follow_tags
from handlers.crm.api import crm_owned_tag_ids, report_tag_changes
from handlers.tags.api import FollowTag, Tag, TagApi, TagGroup, ensure, resolve_ids
from handlers.timeline.api import note
from scrm.kernel.models import OutboxAction
from scrm.kernel.outbox import Outbox
from scrm.playbook import Playbook

MARK_TAG = "externalcontact/mark_tag"
CRM_READ_ONLY = "标签组「{group}」由CRM同步维护，不能在侧边栏修改"
NOT_EDITABLE = "标签「{name}」不在可编辑的标签组里（sop/tags.yaml 中 owner: manager 的组）"


@dataclass(frozen=True)
class EditableTag:
    name: str  # "group/tag", as the edit names it
    tag: str
    on: bool


@dataclass(frozen=True)
class EditableGroup:
    group: str
    tags: list[EditableTag]


@dataclass(frozen=True)
class TagEditor:
    """The tags the viewer may set on ``relation`` (a member's userid), by manager-owned group,
    and the groups only the CRM sets (shown, not editable)."""

    relation: str
    groups: list[EditableGroup]
    crm_groups: list[str]


def manager_tags(pb: Playbook) -> dict[str, list[str]]:
    """The editable tags by group, in the tag map's order."""
    return {g: list(spec.tags) for g, spec in pb.tag_groups.items() if spec.owner == "manager"}


def refusal(pb: Playbook, names: Sequence[str]) -> str | None:
    """Why one of ``names`` may not be set or removed in the sidebar (None: all may)."""
    editable = manager_tags(pb)
    for name in names:
        group, _, tag = name.partition("/")
        spec = pb.tag_groups.get(group)
        if spec is not None and spec.owner == "crm":
            return CRM_READ_ONLY.format(group=group)
        if tag not in editable.get(group, []):
            return NOT_EDITABLE.format(name=name)
    return None


async def relation_tags(db: AsyncSession, userid: str, external_userid: str) -> dict[str, str]:
    """``"group/tag" → tag id`` of the live tags on one relation."""
    rows = await db.execute(
        select(TagGroup.name, Tag.name, Tag.tag_id).select_from(FollowTag)
        .join(Tag, Tag.tag_id == FollowTag.tag_id).join(TagGroup, TagGroup.group_id == Tag.group_id)
        .where(FollowTag.userid == userid, FollowTag.external_userid == external_userid,
               Tag.deleted.is_(False), TagGroup.deleted.is_(False)))
    return {f"{group}/{tag}": tag_id for group, tag, tag_id in rows.all()}


def editor(pb: Playbook, relation: str, current: Mapping[str, str]) -> TagEditor:
    groups = [EditableGroup(g, [EditableTag(f"{g}/{t}", t, f"{g}/{t}" in current) for t in tags])
              for g, tags in manager_tags(pb).items()]
    return TagEditor(relation, groups, [g for g, spec in pb.tag_groups.items() if spec.owner == "crm"])


@dataclass(frozen=True)
class Edit:
    """One tap's change, as the page sends it: names to add and remove, and the page's id for
    the tap (a repeated request with the same id changes nothing twice)."""

    add: list[str]
    remove: list[str]
    edit_id: str


def parse_edit(body: object) -> Edit | str:
    """The edit in a request body, or what is wrong with it (one line)."""
    shape = 'body must be JSON {"add": ["group/tag", …], "remove": [...], "edit": "<id of this tap>"}'
    if not isinstance(body, dict):
        return shape
    add, remove, edit_id = body.get("add", []), body.get("remove", []), body.get("edit")
    if not (isinstance(add, list) and isinstance(remove, list) and all(isinstance(n, str) for n in add + remove)
            and isinstance(edit_id, str)):
        return shape
    if not add and not remove:
        return "nothing to change: give add or remove"
    if set(add) & set(remove):
        return "a tag cannot be added and removed in one edit"
    if len(add) + len(remove) > 100:
        return "at most 100 tags in one edit"
    return Edit(list(dict.fromkeys(add)), list(dict.fromkeys(remove)), edit_id)


@dataclass(frozen=True)
class Applied:
    added: list[str]  # "group/tag" really added (not already there)
    removed: list[str]
    repeated: bool = False  # this edit id was applied before: nothing done now


def edit_key(relation: str, external_userid: str, edit_id: str) -> str:
    return f"sidebar:tags:{relation}:{external_userid}:{edit_id}"


async def apply(db: AsyncSession, outbox: Outbox, wecom: TagApi, pb: Playbook, edit: Edit, *, viewer: str,
                relation: str, external_userid: str, crm_id: str | None, report: bool, now: datetime) -> Applied:
    """Apply ``edit`` (already checked against the tag map) to the relation, in ``db``'s transaction.

    A tag to add that the local catalog lacks is looked up in WeCom, and created there when the
    tag map lists it but WeCom has none yet (``ensure``, before the first write)."""
    key = edit_key(relation, external_userid, edit.edit_id)
    if await db.scalar(select(OutboxAction.id).where(OutboxAction.idempotency_key == key)) is not None:
        return Applied([], [], repeated=True)
    current = await relation_tags(db, relation, external_userid)
    adding = [n for n in edit.add if n not in current]
    removing = [n for n in edit.remove if n in current]
    if not adding and not removing:
        return Applied([], [])
    add_ids = resolve_ids(await ensure(db, wecom, adding), adding) if adding else []
    remove_ids = [current[n] for n in removing]
    body: dict[str, object] = {"userid": relation, "external_userid": external_userid}
    if add_ids:
        body["add_tag"] = add_ids
    if remove_ids:
        body["remove_tag"] = remove_ids
    await outbox.add(db, key, MARK_TAG, body)
    # WeCom sends no callback for an API edit: mirror it, so the panel and the CRM diff see it.
    held = (await db.scalars(select(FollowTag.tag_id).where(
        FollowTag.userid == relation, FollowTag.external_userid == external_userid))).all()
    await set_follow_tags(db, relation, external_userid, [t for t in held if t not in remove_ids] + add_ids, now)
    await report_tag_changes(db, outbox, userid=relation, external_userid=external_userid, crm_id=crm_id,
                             crm_tag_ids=await crm_owned_tag_ids(db, pb.tag_groups),
                             key=f"crmhook:{key}", now=now, enabled=report)
    await note(db, None, "customer", external_userid, now, "sidebar.tags",
               {"manager": viewer, "relation": relation, "added": adding, "removed": removing})
    return Applied(adding, removing)
