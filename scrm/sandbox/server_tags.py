"""Corp tag APIs (92117) and mark_tag (92118).

Rules honoured: ≤3000 live corp tags; names ≤30 chars; a known group_name adds into that group;
no empty groups; same-name tags in one request collapse into one, a name already in the group
answers 40071; a group emptied by deletions is deleted too; the app may edit or delete only
tags it created (admin-made ones answer 60011); order in [0, 2^32).
"""

from __future__ import annotations

from scrm.sandbox import errors
from scrm.sandbox.errors import ApiError, invalid
from scrm.sandbox.params import Json, dict_items, get_int, get_list, get_str, get_str_list
from scrm.sandbox.records import Tag, TagGroup
from scrm.sandbox.routing import Call, RouteTable
from scrm.sandbox.state import SandboxState

router = RouteTable()
MAX_ORDER = 2**32 - 1


def tag_json(tag: Tag) -> Json:
    return {
        "id": tag.id,
        "name": tag.name,
        "create_time": int(tag.create_time),
        "order": tag.order,
        "deleted": tag.deleted,
    }


def group_json(group: TagGroup, tags: list[Tag]) -> Json:
    return {
        "group_id": group.group_id,
        "group_name": group.group_name,
        "create_time": int(group.create_time),
        "order": group.order,
        "deleted": group.deleted,
        "tag": [tag_json(t) for t in tags],
    }


def _live_group(state: SandboxState, group_id: str) -> TagGroup | None:
    group = state.tag_groups.get(group_id)
    return group if group is not None and not group.deleted else None


@router.post("externalcontact/get_corp_tag_list")
def get_corp_tag_list(call: Call) -> Json:
    """All live groups, or those in ``group_id`` (wins), or the groups of ``tag_id`` (only those tags)."""
    state = call.state
    group_ids = get_str_list(call.body, "group_id")
    tag_ids = get_str_list(call.body, "tag_id")
    out: list[Json] = []
    if group_ids:
        for gid in dict.fromkeys(group_ids):
            group = _live_group(state, gid)
            if group is not None:
                out.append(group_json(group, state.live_tags(group)))
    elif tag_ids:
        wanted = {t for t in tag_ids if state.live_tag(t) is not None}
        for group in state.tag_groups.values():
            picked = [t for t in state.live_tags(group) if t.id in wanted]
            if picked:
                out.append(group_json(group, picked))
    else:
        out = [group_json(g, state.live_tags(g)) for g in state.tag_groups.values() if not g.deleted]
    return {"tag_group": out}


@router.post("externalcontact/add_corp_tag")
def add_corp_tag(call: Call) -> Json:
    """Create tags in a group given by id or name (a new name creates the group)."""
    state, body = call.state, call.body
    group_id = get_str(body, "group_id")
    group_name = get_str(body, "group_name", max_chars=30)
    group_order = get_int(body, "order", 0, lo=0, hi=MAX_ORDER)
    wanted: dict[str, int] = {}  # same-name tags in one request collapse into the first
    for item in dict_items(get_list(body, "tag"), "tag"):
        name = get_str(item, "name", required=True, max_chars=30)
        wanted.setdefault(name, get_int(item, "order", 0, lo=0, hi=MAX_ORDER))
    if not wanted:
        raise invalid("tag is required: empty tag groups are not supported")
    group: TagGroup | None
    if group_id:
        group = _live_group(state, group_id)
        if group is None:
            raise ApiError(errors.INVALID_TAGID, f"group_id {group_id!r} not found")
    elif group_name:
        group = state.live_group_by_name(group_name)
    else:
        raise invalid("group_id or group_name is required")
    if group is not None:
        existing = {t.name for t in state.live_tags(group)}
        clash = sorted(existing & wanted.keys())
        if clash:
            raise ApiError(errors.TAG_NAME_EXISTS, f"tag {clash[0]!r} already exists in the group")
    if state.live_tag_count() + len(wanted) > state.limits.max_corp_tags:
        raise invalid(f"corp tag limit {state.limits.max_corp_tags} exceeded")
    if group is None:
        group = state.new_tag_group(group_name, call.now, order=group_order)
    created = [state.new_tag(group, name, call.now, order=order) for name, order in wanted.items()]
    return {"tag_group": group_json(group, created)}


@router.post("externalcontact/edit_corp_tag")
def edit_corp_tag(call: Call) -> Json:
    """Rename or reorder a tag or a group; names stay unique within their scope."""
    state, body = call.state, call.body
    ident = get_str(body, "id", required=True)
    name = get_str(body, "name", max_chars=30)
    has_order = "order" in body
    order = get_int(body, "order", 0, lo=0, hi=MAX_ORDER)
    if not name and not has_order:
        raise invalid("name or order is required")
    tag = state.live_tag(ident)
    group = _live_group(state, ident)
    if tag is not None:
        if tag.created_by != "app":
            raise ApiError(errors.NO_PRIVILEGE, "the app may only edit tags it created")
        siblings = state.live_tags(state.tag_groups[tag.group_id])
        if name and any(t.name == name and t.id != tag.id for t in siblings):
            raise ApiError(errors.TAG_NAME_EXISTS, f"tag {name!r} already exists in the group")
        tag.name = name or tag.name
        tag.order = order if has_order else tag.order
    elif group is not None:
        if group.created_by != "app":
            raise ApiError(errors.NO_PRIVILEGE, "the app may only edit tag groups it created")
        others = (g for g in state.tag_groups.values() if not g.deleted and g.group_id != group.group_id)
        if name and any(g.group_name == name for g in others):
            raise ApiError(errors.TAG_NAME_EXISTS, f"tag group {name!r} already exists")
        group.group_name = name or group.group_name
        group.order = order if has_order else group.order
    else:
        raise ApiError(errors.INVALID_TAGID, f"id {ident!r} not found")
    return {}


@router.post("externalcontact/del_corp_tag")
def del_corp_tag(call: Call) -> Json:
    """Delete tags and/or groups; a group left without tags is deleted too."""
    state = call.state
    tag_ids = get_str_list(call.body, "tag_id")
    group_ids = get_str_list(call.body, "group_id")
    if not tag_ids and not group_ids:
        raise invalid("tag_id and group_id cannot both be empty")
    tags = [state.live_tag(t) for t in tag_ids]
    groups = [_live_group(state, g) for g in group_ids]
    for ident, found in [*zip(tag_ids, tags, strict=True), *zip(group_ids, groups, strict=True)]:
        if found is None:
            raise ApiError(errors.INVALID_TAGID, f"id {ident!r} not found")
        if found.created_by != "app":
            raise ApiError(errors.NO_PRIVILEGE, "the app may only delete tags it created")
    for tag in tags:
        if tag is not None and not tag.deleted:
            state.delete_tag(tag.id)
    for group in groups:
        if group is not None and not group.deleted:
            state.delete_tag_group(group.group_id)
    return {}


@router.post("externalcontact/mark_tag")
def mark_tag(call: Call) -> Json:
    """Add/remove corp tags on one follow relation: 40068 bad tag, 84061 not a follow relation."""
    state, body = call.state, call.body
    add = get_str_list(body, "add_tag")
    remove = get_str_list(body, "remove_tag")
    if not add and not remove:
        raise invalid("add_tag and remove_tag cannot both be empty")
    for tag_id in (*add, *remove):
        if state.live_tag(tag_id) is None:
            raise ApiError(errors.INVALID_TAGID, f"tag {tag_id!r} not found")
    relation = state.require_follow(
        get_str(body, "userid", required=True), get_str(body, "external_userid", required=True)
    )
    for tag_id in add:
        if tag_id not in relation.tag_ids:
            relation.tag_ids.append(tag_id)
    relation.tag_ids = [t for t in relation.tag_ids if t not in remove]
    return {}
