"""The sandbox tenant: everything WeCom would hold for one corp, in memory.

The state knows no clock: every time-dependent method takes ``now`` (POSIX seconds), which the
server and the driver read from the injected :class:`~scrm.kernel.clock.Clock`. That keeps the state a
plain data model that tests and :func:`scrm.sandbox.demo.seed_demo` can fill directly.

Mutations shared by the API routes and the callback driver live here (follows, tags, group
membership, single-use codes) so both sides apply the same rules.
"""

from __future__ import annotations

import itertools
import secrets
from collections import deque
from collections.abc import Iterable
from typing import Literal

from scrm.sandbox import errors
from scrm.sandbox.errors import ApiError, invalid
from scrm.sandbox.follow_table import FollowTable
from scrm.sandbox.jssdk import JsSdk
from scrm.sandbox.masssend import confirm_task
from scrm.sandbox.records import (
    Card,
    CodeGrant,
    ContactWay,
    Customer,
    Delivery,
    Department,
    Follow,
    GroupChat,
    GroupMember,
    JoinWay,
    Json,
    Limits,
    Media,
    Member,
    MomentTask,
    MsgTemplate,
    ReceivedCall,
    SendResult,
    Tag,
    TagGroup,
    Token,
    Transfer,
)


class SandboxState:
    """In-memory data of one sandbox corp. Fill it directly or with ``seed_demo``."""

    def __init__(self, *, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.members: dict[str, Member] = {}
        # The address book's departments; WeCom always has the root, id 1.
        self.departments: dict[int, Department] = {1: Department(id=1, name="总部")}
        self.customers: dict[str, Customer] = {}
        # (userid, external_userid); indexed by member and by customer for a big seeded corp
        self.follows: dict[tuple[str, str], Follow] = FollowTable()
        self.tag_groups: dict[str, TagGroup] = {}
        self.tags: dict[str, Tag] = {}
        self.contact_ways: dict[str, ContactWay] = {}
        self.join_ways: dict[str, JoinWay] = {}
        self.groups: dict[str, GroupChat] = {}
        self.group_welcome_templates: dict[str, Json] = {}
        self.welcome_codes: dict[str, CodeGrant] = {}
        self.oauth_codes: dict[str, CodeGrant] = {}
        self.response_codes: dict[str, CodeGrant] = {}
        self.tokens: dict[str, Token] = {}
        self.media: dict[str, Media] = {}
        self.msg_templates: dict[str, MsgTemplate] = {}
        self.cards: dict[str, Card] = {}  # by task_id
        self.moment_tasks: dict[str, MomentTask] = {}
        self.transfers: list[Transfer] = []
        self.jssdk = JsSdk()  # the app's jsapi ticket and the emulated chat-toolbar webviews
        self.deliveries: list[Delivery] = []
        self.received: list[ReceivedCall] = []
        # message/send bookkeeping: delivery times per member (30/min, 1000/h) and the last
        # delivery time per (member, content) for enable_duplicate_check.
        self.app_msg_times: dict[str, deque[float]] = {}
        self.app_msg_last_seen: dict[tuple[str, str], float] = {}
        self._seq = itertools.count(1)

    # -- ids ---------------------------------------------------------------------------------

    def new_id(self, prefix: str) -> str:
        """A unique, readable id (deterministic order, so tests can reason about it)."""
        return f"{prefix}{next(self._seq):06d}"

    # -- members and customers ---------------------------------------------------------------

    def add_member(self, userid: str, name: str, *, department: Iterable[int] = (1,), position: str = "",
                   leader_in: Iterable[int] = ()) -> Member:
        """Add a corp member visible to the app (``leader_in``: the departments they lead)."""
        member = Member(userid=userid, name=name, department=list(department), position=position,
                        leader_in=list(leader_in))
        self.members[userid] = member
        return member

    # -- the address book (通讯录) -------------------------------------------------------------

    def add_department(self, id: int, name: str, parentid: int = 1, *, order: int = 0) -> Department:
        """Add (or replace) a department under ``parentid``."""
        department = Department(id=id, name=name, parentid=parentid, order=order)
        self.departments[id] = department
        return department

    def require_department(self, id: int) -> Department:
        """The department or 60123."""
        department = self.departments.get(id)
        if department is None:
            raise ApiError(errors.INVALID_PARTY, f"department {id} not found")
        return department

    def department_tree(self, root: int) -> list[Department]:
        """``root`` and every department below it, parents before children."""
        out = [self.require_department(root)]
        index = 0
        while index < len(out):
            parent = out[index].id
            out.extend(sorted((d for d in self.departments.values() if d.parentid == parent and d.id != parent),
                              key=lambda d: (-d.order, d.id)))
            index += 1
        return out

    def department_leaders(self, id: int) -> list[str]:
        """The active members who lead department ``id``."""
        return [m.userid for m in self.members.values()
                if m.status == "active" and id in m.leader_in and id in m.department]

    def resign_member(self, userid: str, now: float) -> None:
        """Mark a member as having left; their customers become unassigned (get_unassigned_list)."""
        member = self.members[userid]
        member.status = "resigned"
        member.dimission_time = now
        for chat in self.groups.values():
            if chat.owner == userid and not chat.dismissed:
                chat.status = 1

    def active_member(self, userid: str) -> Member | None:
        member = self.members.get(userid)
        return member if member is not None and member.status == "active" else None

    def require_member(self, userid: str, field: str = "userid") -> Member:
        """The active member ``userid`` or 60111 (40058 when empty)."""
        if not userid:
            raise invalid(f"{field} is required")
        member = self.active_member(userid)
        if member is None:
            raise ApiError(errors.USERID_NOT_FOUND, f"{field} {userid!r} not found")
        return member

    def add_customer(
        self,
        name: str,
        *,
        external_userid: str | None = None,
        type: int = 1,
        gender: int = 0,
        unionid: str | None = None,
        corp_name: str = "",
    ) -> Customer:
        """Create an external contact with generated ids (external_userid, openid, unionid)."""
        ext = external_userid or self.new_id("wmsbcust")
        customer = Customer(
            external_userid=ext,
            name=name,
            type=type,
            gender=gender,
            unionid=self.new_id("oSbUnion") if unionid is None else unionid,
            openid=self.new_id("oSbOpen"),
            avatar=f"https://sandbox.invalid/avatar/{ext}.png",
            corp_name=corp_name,
        )
        self.customers[ext] = customer
        return customer

    def require_customer(self, external_userid: str) -> Customer:
        """The customer or 40096."""
        customer = self.customers.get(external_userid)
        if customer is None:
            raise ApiError(errors.INVALID_EXTERNAL_USERID, f"external_userid {external_userid!r}")
        return customer

    # -- follow relations --------------------------------------------------------------------

    def follow(self, userid: str, external_userid: str) -> Follow | None:
        return self.follows.get((userid, external_userid))

    def require_follow(self, userid: str, external_userid: str) -> Follow:
        """The relation, or 40096 / 60111 / 84061 in WeCom's order of checks."""
        self.require_customer(external_userid)
        self.require_member(userid)
        relation = self.follows.get((userid, external_userid))
        if relation is None:
            raise ApiError(errors.NOT_EXTERNAL_CONTACT, f"{userid} does not follow {external_userid}")
        return relation

    def follows_of_customer(self, external_userid: str) -> list[Follow]:
        """Follow relations of a customer, oldest first, members still active."""
        table = self.follows
        candidates = table.of_customer(external_userid) if isinstance(table, FollowTable) else table.values()
        found = [
            f
            for f in candidates
            if f.external_userid == external_userid and self.active_member(f.userid) is not None
        ]
        return sorted(found, key=lambda f: (f.createtime, f.userid))

    def follows_of_member(self, userid: str) -> list[Follow]:
        """A member's customers, oldest first."""
        table = self.follows
        candidates = table.of_member(userid) if isinstance(table, FollowTable) else table.values()
        found = [f for f in candidates if f.userid == userid]
        return sorted(found, key=lambda f: (f.createtime, f.external_userid))

    def add_follow(
        self,
        userid: str,
        external_userid: str,
        now: float,
        *,
        remark: str = "",
        state: str = "",
        add_way: int = 1,
        oper_userid: str = "",
        tag_ids: Iterable[str] = (),
        half: bool = False,
    ) -> Follow:
        """Create (or refresh) the member ↔ customer relation."""
        relation = Follow(
            userid=userid,
            external_userid=external_userid,
            createtime=now,
            remark=remark,
            state=state,
            add_way=add_way,
            oper_userid=oper_userid or userid,
            tag_ids=list(tag_ids),
            half=half,
        )
        self.follows[(userid, external_userid)] = relation
        return relation

    def remove_follow(self, userid: str, external_userid: str) -> Follow | None:
        return self.follows.pop((userid, external_userid), None)

    # -- corp tags ---------------------------------------------------------------------------

    def live_tag_count(self) -> int:
        return sum(1 for t in self.tags.values() if not t.deleted)

    def live_group_by_name(self, name: str) -> TagGroup | None:
        return next((g for g in self.tag_groups.values() if not g.deleted and g.group_name == name), None)

    def live_tags(self, group: TagGroup) -> list[Tag]:
        return [self.tags[i] for i in group.tag_ids if not self.tags[i].deleted]

    def live_tag(self, tag_id: str) -> Tag | None:
        tag = self.tags.get(tag_id)
        return tag if tag is not None and not tag.deleted else None

    def new_tag_group(
        self, name: str, now: float, *, order: int = 0, created_by: Literal["app", "admin"] = "app"
    ) -> TagGroup:
        group = TagGroup(
            group_id=self.new_id("etsbgrp"), group_name=name, create_time=now, order=order, created_by=created_by
        )
        self.tag_groups[group.group_id] = group
        return group

    def new_tag(
        self,
        group: TagGroup,
        name: str,
        now: float,
        *,
        order: int = 0,
        created_by: Literal["app", "admin"] = "app",
    ) -> Tag:
        tag = Tag(
            id=self.new_id("etsbtag"),
            name=name,
            group_id=group.group_id,
            create_time=now,
            order=order,
            created_by=created_by,
        )
        self.tags[tag.id] = tag
        group.tag_ids.append(tag.id)
        return tag

    def delete_tag(self, tag_id: str) -> None:
        """Delete a tag, strip it from every follow, and drop its group when emptied."""
        tag = self.tags[tag_id]
        tag.deleted = True
        for relation in self.follows.values():
            if tag_id in relation.tag_ids:
                relation.tag_ids.remove(tag_id)
        group = self.tag_groups[tag.group_id]
        if not self.live_tags(group):
            group.deleted = True

    def delete_tag_group(self, group_id: str) -> None:
        group = self.tag_groups[group_id]
        for tag in self.live_tags(group):
            self.delete_tag(tag.id)
        group.deleted = True

    # -- customer groups ---------------------------------------------------------------------

    def create_group(
        self,
        owner: str,
        name: str,
        now: float,
        *,
        members: Iterable[str] = (),
        chat_id: str | None = None,
        notice: str = "",
    ) -> GroupChat:
        """Create a customer group owned by ``owner`` with optional initial members."""
        chat = GroupChat(
            chat_id=chat_id or self.new_id("wrsbchat"), name=name, owner=owner, create_time=now, notice=notice
        )
        self.groups[chat.chat_id] = chat
        self.add_group_members(chat.chat_id, [owner], now, join_scene=1)
        self.add_group_members(chat.chat_id, members, now, join_scene=1, invitor=owner)
        chat.version_seq = 1  # creation is one membership version, however it was built
        return chat

    def require_group(self, chat_id: str) -> GroupChat:
        """The live group or 40058 naming the chat id."""
        chat = self.groups.get(chat_id)
        if chat is None or chat.dismissed:
            raise invalid(f"chat_id {chat_id!r} not found")
        return chat

    def add_group_members(
        self,
        chat_id: str,
        ids: Iterable[str],
        now: float,
        *,
        join_scene: int = 1,
        invitor: str = "",
        state: str = "",
    ) -> tuple[str, str]:
        """Add members (userids or external userids); returns (last, current) member_version.

        Unknown external ids become customers without a follow relation, as strangers in a
        WeCom group are (externalcontact/get on them answers 84061).
        """
        chat = self.groups[chat_id]
        last = chat.member_version
        for ident in ids:
            if ident in chat.members:
                continue
            member = self.members.get(ident)
            if member is not None:
                chat.members[ident] = GroupMember(
                    userid=ident, type=1, join_time=now, join_scene=join_scene, invitor=invitor, name=member.name
                )
                continue
            customer = self.customers.get(ident) or self.add_customer(f"微信用户{ident[-4:]}", external_userid=ident)
            chat.members[ident] = GroupMember(
                userid=ident,
                type=2,
                join_time=now,
                join_scene=join_scene,
                invitor=invitor,
                state=state,
                name=customer.name,
                unionid=customer.unionid,
            )
        chat.version_seq += 1
        return last, chat.member_version

    def remove_group_members(self, chat_id: str, ids: Iterable[str]) -> tuple[str, str]:
        """Remove members; returns (last, current) member_version."""
        chat = self.groups[chat_id]
        last = chat.member_version
        for ident in ids:
            chat.members.pop(ident, None)
            if ident in chat.admins:
                chat.admins.remove(ident)
        chat.version_seq += 1
        return last, chat.member_version

    # -- single-use codes --------------------------------------------------------------------

    def issue_welcome_code(self, userid: str, external_userid: str, now: float) -> str:
        """Register a fresh WelcomeCode (20 s, single use) as WeCom does on add events."""
        code = "WC" + secrets.token_hex(16)
        self.welcome_codes[code] = CodeGrant(
            code=code,
            issued_at=now,
            ttl_s=self.limits.welcome_code_ttl_s,
            userid=userid,
            external_userid=external_userid,
        )
        return code

    def consume_welcome_code(self, code: str, now: float) -> CodeGrant:
        """Use a welcome code once: used → 41051; unknown or expired → 40058."""
        grant = self.welcome_codes.get(code)
        if grant is not None and grant.used:
            raise ApiError(errors.WELCOME_CODE_USED, "welcome_code already used")
        if grant is None or not grant.valid(now):
            raise invalid("welcome_code is unknown or expired (valid 20 s)")
        grant.used = True
        return grant

    def issue_oauth_code(self, now: float, *, userid: str = "", openid: str = "", external_userid: str = "") -> str:
        """An OAuth code (5 min, single use) for auth/getuserinfo: a member or a WeChat viewer."""
        code = "OC" + secrets.token_hex(16)
        self.oauth_codes[code] = CodeGrant(
            code=code,
            issued_at=now,
            ttl_s=self.limits.oauth_code_ttl_s,
            userid=userid,
            openid=openid,
            external_userid=external_userid,
        )
        return code

    def issue_response_code(self, now: float, *, userid: str, ref: str) -> str:
        """A template-card ResponseCode (72 h, single use) for update_template_card."""
        code = "RC" + secrets.token_hex(16)
        self.response_codes[code] = CodeGrant(
            code=code, issued_at=now, ttl_s=self.limits.response_code_ttl_s, userid=userid, ref=ref
        )
        return code

    # -- access tokens -----------------------------------------------------------------------

    def issue_token(self, now: float) -> Token:
        token = Token(token="sbtok" + secrets.token_urlsafe(48), expires_at=now + self.limits.token_ttl_s)
        self.tokens[token.token] = token
        return token

    def check_token(self, token: str | None, now: float) -> None:
        """41001 missing, 40014 unknown or revoked, 42001 expired."""
        if not token:
            raise ApiError(errors.MISSING_ACCESS_TOKEN)
        found = self.tokens.get(token)
        if found is None or found.revoked:
            raise ApiError(errors.INVALID_ACCESS_TOKEN)
        if now >= found.expires_at:
            raise ApiError(errors.ACCESS_TOKEN_EXPIRED)

    def expire_token(self, token: str) -> None:
        """Make ``token`` answer 42001 from now on."""
        self.tokens[token].expires_at = float("-inf")

    def expire_all_tokens(self) -> None:
        for token in self.tokens.values():
            token.expires_at = float("-inf")

    def revoke_all_tokens(self) -> None:
        """WeCom may invalidate tokens early: they then answer 40014."""
        for token in self.tokens.values():
            token.revoked = True

    # -- media -------------------------------------------------------------------------------

    def require_media(self, media_id: str, now: float, field: str = "media_id") -> Media:
        """A media id uploaded less than 3 days ago, else 40007."""
        media = self.media.get(media_id)
        if media is None or now >= media.created_at + self.limits.media_ttl_s:
            raise ApiError(errors.INVALID_MEDIA_ID, f"{field} {media_id!r} unknown or expired")
        return media

    # -- time-driven transitions -------------------------------------------------------------

    def settle(self, now: float) -> None:
        """Apply what WeCom does on its own as time passes (24 h succession takeover)."""
        for item in self.transfers:
            if item.status == 2 and now >= item.started_at + self.limits.transfer_takeover_s:
                old = self.remove_follow(item.handover_userid, item.external_userid)
                self.add_follow(
                    item.takeover_userid,
                    item.external_userid,
                    now,
                    remark=old.remark if old else "",
                    tag_ids=old.tag_ids if old else (),
                    add_way=202,
                    oper_userid=item.takeover_userid,
                )
                item.status = 1
                item.takeover_time = now

    # -- logs --------------------------------------------------------------------------------

    def record_call(self, call: ReceivedCall) -> None:
        self.received.append(call)

    def received_calls(self, path: str | None = None) -> list[ReceivedCall]:
        """Successful calls in order; ``path`` like ``/cgi-bin/message/send`` or ``message/send``."""
        if path is None:
            return list(self.received)
        wanted = path if path.startswith("/") else f"/cgi-bin/{path}"
        return [c for c in self.received if c.path == wanted]

    def delivered_messages(self, *, kind: str | None = None, to: str | None = None) -> list[Delivery]:
        """Messages that actually reached a customer, group or member (duplicates show here)."""
        return [
            d
            for d in self.deliveries
            if not d.dropped and (kind is None or d.kind == kind) and (to is None or d.to == to)
        ]

    def dropped_messages(self, *, reason: str | None = None) -> list[Delivery]:
        """Messages WeCom accepted but did not deliver (rate-limited or duplicate-checked)."""
        return [d for d in self.deliveries if d.dropped and (reason is None or d.dropped == reason)]

    # -- moments -----------------------------------------------------------------------------

    def publish_moment(self, jobid: str, userid: str, now: float) -> bool:
        """A sender publishes an enterprise moment from the client (once; False if not theirs)."""
        task = self.moment_tasks.get(jobid)
        if task is None or userid not in task.senders:
            return False
        task.published.setdefault(userid, now)
        return True

    # -- mass send ---------------------------------------------------------------------------

    def confirm_msg_task(self, msgid: str, userid: str, now: float) -> list[SendResult]:
        """The sender confirms a mass-send task in the client; see :mod:`scrm.sandbox.masssend`."""
        return confirm_task(self, msgid, userid, now)
