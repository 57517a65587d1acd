"""The callback driver: plays WeCom towards our service's callback URL.

Each method first changes the sandbox state the way the client/admin action would (so a
handler that calls the API back sees the new data), then POSTs the encrypted event
(``WeComCrypto.envelope``; query ``msg_signature``, ``timestamp``, ``nonce``) and returns the
:class:`DeliveryOutcome`. Like WeCom, a delivery without HTTP 200 within ``timeout_s`` is
retried up to ``retries`` times (4 deliveries by default), with the same body: receivers
must deduplicate. The timeout is real time (it is a network deadline); event times come
from the Clock.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType

import aiohttp

from scrm.adapters.wecom.crypto import WeComCrypto
from scrm.kernel.clock import Clock
from scrm.sandbox import SANDBOX_AGENT_ID
from scrm.sandbox import event_xml as ex
from scrm.sandbox.records import Json, Member, SendResult
from scrm.sandbox.state import SandboxState

# Event JoinScene numbering (0 直接邀请, 1 邀请链接, 3 扫码) → groupchat/get join_scene (1, 2, 3).
JOIN_SCENE_TO_MEMBER = {0: 1, 1: 2, 3: 3}


@dataclass
class DeliveryOutcome:
    """What happened to one event: the plaintext, its fields, and each attempt's HTTP status
    (``None`` for a timeout or connection error)."""

    delivered: bool
    attempts: int
    statuses: list[int | None]
    xml: str
    fields: dict[str, str] = field(default_factory=dict)


class CallbackDriver:
    """Acts like WeCom towards ``callback_url``. Use as an async context manager or call close()."""

    def __init__(
        self,
        state: SandboxState,
        crypto: WeComCrypto,
        callback_url: str,
        clock: Clock,
        *,
        timeout_s: float = 5.0,
        retries: int = 3,
        agent_id: int = SANDBOX_AGENT_ID,
        seed: int | None = None,
    ) -> None:
        self.state = state
        self.crypto = crypto
        self.callback_url = callback_url
        self.clock = clock
        self.timeout_s = timeout_s
        self.retries = retries
        self.agent_id = agent_id
        self.corp_id = crypto.receive_id
        self.outcomes: list[DeliveryOutcome] = []
        self._rng = random.Random(seed)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> CallbackDriver:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- delivery ----------------------------------------------------------------------------

    def _now(self) -> float:
        return self.clock.now().timestamp()

    async def deliver(self, fields: Sequence[tuple[str, ex.Value]], *, app_event: bool = False) -> DeliveryOutcome:
        """Encrypt and POST one event, retrying on timeout, connection error or non-200."""
        xml = ex.build(fields)
        timestamp = str(int(self._now()))
        nonce = str(self._rng.randint(10**8, 10**10))
        body, signature = self.crypto.envelope(xml, timestamp, nonce, str(self.agent_id) if app_event else None)
        params = {"msg_signature": signature, "timestamp": timestamp, "nonce": nonce}
        if self._session is None:
            self._session = aiohttp.ClientSession()
        statuses: list[int | None] = []
        delivered = False
        for _ in range(1 + self.retries):
            try:
                async with self._session.post(
                    self.callback_url,
                    params=params,
                    data=body.encode("utf-8"),
                    headers={"Content-Type": "text/xml; charset=utf-8"},
                    timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                ) as response:
                    await response.read()
                    statuses.append(response.status)
            except (TimeoutError, aiohttp.ClientError):
                statuses.append(None)
            if statuses[-1] == 200:
                delivered = True
                break
        flat = {k: v for k, v in fields if isinstance(v, str | int) and not isinstance(v, bool)}
        outcome = DeliveryOutcome(
            delivered=delivered,
            attempts=len(statuses),
            statuses=statuses,
            xml=xml,
            fields={k: str(v) for k, v in flat.items()},
        )
        self.outcomes.append(outcome)
        return outcome

    def _contact_event(self, change: str, userid: str, ext: str) -> list[tuple[str, ex.Value]]:
        return [
            *ex.header(self.corp_id, int(self._now()), "change_external_contact"),
            ("ChangeType", change),
            ("UserID", userid),
            ("ExternalUserID", ext),
        ]

    def _require_member(self, userid: str) -> None:
        if self.state.active_member(userid) is None:
            raise ValueError(f"{userid!r} is not an active member of the sandbox")

    # -- customers ---------------------------------------------------------------------------

    async def add_external_contact(
        self,
        userid: str,
        external_userid: str | None = None,
        *,
        name: str = "微信客户",
        state: str = "",
        add_way: int = 1,
        welcome_code: bool = True,
        half: bool = False,
    ) -> DeliveryOutcome:
        """A customer adds ``userid`` (a new customer unless ``external_userid`` is known).

        With ``welcome_code`` a fresh WelcomeCode (20 s, single use) is registered and sent.
        ``half=True`` sends add_half_external_contact (member not confirmed yet).
        """
        self._require_member(userid)
        now = self._now()
        customer = self.state.customers.get(external_userid or "") or self.state.add_customer(
            name, external_userid=external_userid
        )
        ext = customer.external_userid
        self.state.add_follow(userid, ext, now, state=state, add_way=add_way, half=half)
        fields = self._contact_event("add_half_external_contact" if half else "add_external_contact", userid, ext)
        fields.append(("State", state))
        if welcome_code:
            fields.append(("WelcomeCode", self.state.issue_welcome_code(userid, ext, now)))
        return await self.deliver(fields)

    async def add_half_external_contact(
        self, userid: str, external_userid: str | None = None, *, name: str = "微信客户", state: str = ""
    ) -> DeliveryOutcome:
        """A customer adds a 免验证 member who has not confirmed yet."""
        return await self.add_external_contact(userid, external_userid, name=name, state=state, half=True)

    async def del_follow_user(self, userid: str, external_userid: str) -> DeliveryOutcome:
        """The customer deletes the member (the relation is gone for API purposes)."""
        self.state.remove_follow(userid, external_userid)
        return await self.deliver(self._contact_event("del_follow_user", userid, external_userid))

    async def del_external_contact(self, userid: str, external_userid: str, *, source: str = "") -> DeliveryOutcome:
        """The member deletes the customer; ``source="DELETE_BY_TRANSFER"`` for 在职继承."""
        self.state.remove_follow(userid, external_userid)
        fields = self._contact_event("del_external_contact", userid, external_userid)
        if source:
            fields.append(("Source", source))
        return await self.deliver(fields)

    async def edit_external_contact(
        self,
        userid: str,
        external_userid: str,
        *,
        remark: str | None = None,
        description: str | None = None,
        add_tags: Iterable[str] = (),
        remove_tags: Iterable[str] = (),
    ) -> DeliveryOutcome:
        """The member edits the remark or corp tags in the client."""
        relation = self.state.follow(userid, external_userid)
        if relation is None:
            raise ValueError(f"{userid} does not follow {external_userid}")
        add, remove = list(add_tags), set(remove_tags)
        for tag_id in [*add, *remove]:
            if self.state.live_tag(tag_id) is None:
                raise ValueError(f"unknown tag {tag_id!r}")
        if remark is not None:
            relation.remark = remark
        if description is not None:
            relation.description = description
        relation.tag_ids = [t for t in dict.fromkeys([*relation.tag_ids, *add]) if t not in remove]
        return await self.deliver(self._contact_event("edit_external_contact", userid, external_userid))

    async def transfer_fail(
        self, userid: str, external_userid: str, *, reason: str = "customer_refused"
    ) -> DeliveryOutcome:
        """A pending succession to ``userid`` (takeover) failed: status 3 (refused) or 4 (limit)."""
        for item in self.state.transfers:
            if item.takeover_userid == userid and item.external_userid == external_userid and item.status == 2:
                item.status = 3 if reason == "customer_refused" else 4
        fields = self._contact_event("transfer_fail", userid, external_userid)
        fields.append(("FailReason", reason))
        return await self.deliver(fields)

    # -- customer groups ---------------------------------------------------------------------

    def _chat_event(self, chat_id: str, change: str) -> list[tuple[str, ex.Value]]:
        return [
            *ex.header(self.corp_id, int(self._now()), "change_external_chat"),
            ("ChatId", chat_id),
            ("ChangeType", change),
        ]

    async def create_group(
        self, owner: str, name: str, *, members: Iterable[str] = (), chat_id: str | None = None
    ) -> DeliveryOutcome:
        """The owner creates a customer group (members: userids or external userids)."""
        self._require_member(owner)
        chat = self.state.create_group(owner, name, self._now(), members=members, chat_id=chat_id)
        return await self.deliver(self._chat_event(chat.chat_id, "create"))

    async def join_group(
        self, chat_id: str, ids: Sequence[str], *, join_scene: int = 0, invitor: str = "", state: str = ""
    ) -> DeliveryOutcome:
        """Members join; ``join_scene`` uses the event's numbering (0 invite, 1 link, 3 QR)."""
        if join_scene not in JOIN_SCENE_TO_MEMBER:
            raise ValueError("join_scene must be 0, 1 or 3")
        last, cur = self.state.add_group_members(
            chat_id, ids, self._now(), join_scene=JOIN_SCENE_TO_MEMBER[join_scene], invitor=invitor, state=state
        )
        return await self.deliver(self._member_change(chat_id, "add_member", ids, last, cur, join_scene, 0))

    async def leave_group(self, chat_id: str, ids: Sequence[str], *, quit_scene: int = 0) -> DeliveryOutcome:
        """Members leave (0 自己退群) or are removed (1 群主/群管理员移出)."""
        last, cur = self.state.remove_group_members(chat_id, ids)
        return await self.deliver(self._member_change(chat_id, "del_member", ids, last, cur, 0, quit_scene))

    def _member_change(
        self, chat_id: str, detail: str, ids: Sequence[str], last: str, cur: str, join: int, quit_: int
    ) -> list[tuple[str, ex.Value]]:
        return [
            *self._chat_event(chat_id, "update"),
            ("UpdateDetail", detail),
            ("JoinScene", join),
            ("QuitScene", quit_),
            ("MemChangeCnt", len(ids)),
            ("MemChangeList", list(ids)),
            ("LastMemVer", last),
            ("CurMemVer", cur),
        ]

    async def rename_group(self, chat_id: str, name: str) -> DeliveryOutcome:
        self.state.require_group(chat_id).name = name
        return await self.deliver([*self._chat_event(chat_id, "update"), ("UpdateDetail", "change_name")])

    async def dismiss_group(self, chat_id: str) -> DeliveryOutcome:
        self.state.require_group(chat_id).dismissed = True
        return await self.deliver(self._chat_event(chat_id, "dismiss"))

    # -- corp tags (admin console) -----------------------------------------------------------

    def _tag_event(self, ident: str, tag_type: str, change: str) -> list[tuple[str, ex.Value]]:
        fields = [*ex.header(self.corp_id, int(self._now()), "change_external_tag"), ("Id", ident)]
        if tag_type:
            fields.append(("TagType", tag_type))
        fields.append(("ChangeType", change))
        return fields

    async def create_tag(self, group_name: str, tag_name: str, *, order: int = 0) -> DeliveryOutcome:
        """The admin creates a tag; a new group name creates the group (one tag_group event)."""
        now = self._now()
        group = self.state.live_group_by_name(group_name)
        if group is None:
            group = self.state.new_tag_group(group_name, now, created_by="admin")
            self.state.new_tag(group, tag_name, now, order=order, created_by="admin")
            return await self.deliver(self._tag_event(group.group_id, "tag_group", "create"))
        if any(t.name == tag_name for t in self.state.live_tags(group)):
            raise ValueError(f"tag {tag_name!r} already exists in {group_name!r}")
        tag = self.state.new_tag(group, tag_name, now, order=order, created_by="admin")
        return await self.deliver(self._tag_event(tag.id, "tag", "create"))

    async def edit_tag(self, ident: str, name: str) -> DeliveryOutcome:
        """The admin renames a tag or a tag group."""
        tag = self.state.live_tag(ident)
        if tag is not None:
            tag.name = name
            return await self.deliver(self._tag_event(ident, "tag", "update"))
        group = self.state.tag_groups.get(ident)
        if group is None or group.deleted:
            raise ValueError(f"unknown tag or group {ident!r}")
        group.group_name = name
        return await self.deliver(self._tag_event(ident, "tag_group", "update"))

    async def delete_tag(self, tag_id: str) -> DeliveryOutcome:
        """The admin deletes a tag (removed from every customer; an emptied group goes too)."""
        if self.state.live_tag(tag_id) is None:
            raise ValueError(f"unknown tag {tag_id!r}")
        self.state.delete_tag(tag_id)
        return await self.deliver(self._tag_event(tag_id, "tag", "delete"))

    async def delete_tag_group(self, group_id: str) -> DeliveryOutcome:
        """The admin deletes a group; WeCom sends no per-tag deletes."""
        self.state.delete_tag_group(group_id)
        return await self.deliver(self._tag_event(group_id, "tag_group", "delete"))

    async def shuffle_tags(self, group_id: str = "") -> DeliveryOutcome:
        """The admin reorders tags of a group ('' = all groups)."""
        return await self.deliver(self._tag_event(group_id, "", "shuffle"))

    # -- the address book (admin console) -----------------------------------------------------

    def _directory_event(self, change: str) -> list[tuple[str, ex.Value]]:
        return [*ex.header(self.corp_id, int(self._now()), "change_contact"), ("ChangeType", change)]

    @staticmethod
    def _ints(values: Iterable[int]) -> str:
        return ",".join(str(v) for v in values)

    def _member_fields(self, member: Member) -> list[tuple[str, ex.Value]]:
        return [
            ("Department", self._ints(member.department)),
            ("MainDepartment", member.main),
            ("IsLeaderInDept", self._ints(1 if d in member.leader_in else 0 for d in member.department)),
        ]

    async def create_user(
        self, userid: str, name: str, department: Sequence[int], *, leader_in: Iterable[int] = (),
        position: str = "",
    ) -> DeliveryOutcome:
        """The admin adds a member (in ``department``; leading ``leader_in``)."""
        for dept in department:
            self.state.require_department(dept)
        member = self.state.add_member(userid, name, department=department, position=position, leader_in=leader_in)
        fields = [*self._directory_event("create_user"), ("UserID", userid), ("Name", name),
                  *self._member_fields(member), ("Position", position), ("Status", 1)]
        return await self.deliver(fields)

    async def update_user(
        self, userid: str, *, name: str | None = None, department: Sequence[int] | None = None,
        leader_in: Iterable[int] | None = None, position: str | None = None,
    ) -> DeliveryOutcome:
        """The admin edits a member; the event carries only what changed (departments and
        leadership together)."""
        self._require_member(userid)
        member = self.state.members[userid]
        fields = [*self._directory_event("update_user"), ("UserID", userid)]
        if name is not None:
            member.name = name
            fields.append(("Name", name))
        if department is not None or leader_in is not None:
            if department is not None:
                for dept in department:
                    self.state.require_department(dept)
                member.department = list(department)
                member.main_department = None
            if leader_in is not None:
                member.leader_in = list(leader_in)
            fields.extend(self._member_fields(member))
        if position is not None:
            member.position = position
            fields.append(("Position", position))
        return await self.deliver(fields)

    async def delete_user(self, userid: str) -> DeliveryOutcome:
        """The admin deletes a member who left the bank (their customers become unassigned)."""
        self._require_member(userid)
        self.state.resign_member(userid, self._now())
        return await self.deliver([*self._directory_event("delete_user"), ("UserID", userid)])

    async def create_party(self, id: int, name: str, parentid: int, *, order: int = 0) -> DeliveryOutcome:
        """The admin creates a department under ``parentid``."""
        self.state.require_department(parentid)
        self.state.add_department(id, name, parentid, order=order)
        return await self.deliver([*self._directory_event("create_party"), ("Id", id), ("Name", name),
                                   ("ParentId", parentid), ("Order", order)])

    async def update_party(self, id: int, *, name: str | None = None, parentid: int | None = None) -> DeliveryOutcome:
        """The admin renames or moves a department (only the changed fields are sent)."""
        department = self.state.require_department(id)
        fields = [*self._directory_event("update_party"), ("Id", id)]
        if name is not None:
            department.name = name
            fields.append(("Name", name))
        if parentid is not None:
            self.state.require_department(parentid)
            department.parentid = parentid
            fields.append(("ParentId", parentid))
        return await self.deliver(fields)

    async def delete_party(self, id: int) -> DeliveryOutcome:
        """The admin deletes an empty department (WeCom refuses one with members or children)."""
        self.state.require_department(id)
        if any(id in m.department for m in self.state.members.values() if m.status == "active") or any(
            d.parentid == id for d in self.state.departments.values() if d.id != id
        ):
            raise ValueError(f"department {id} is not empty")
        del self.state.departments[id]
        return await self.deliver([*self._directory_event("delete_party"), ("Id", id)])

    # -- app events --------------------------------------------------------------------------

    async def press_card_button(
        self,
        userid: str,
        task_id: str,
        event_key: str,
        *,
        card_type: str | None = None,
        selected_items: Sequence[Json] = (),
    ) -> DeliveryOutcome:
        """The member presses a template-card button: template_card_event with a fresh
        ResponseCode (72 h, single use) registered for update_template_card."""
        self._require_member(userid)
        card = self.state.cards.get(task_id)
        kind = card_type or (card.card_type if card else "button_interaction")
        code = self.state.issue_response_code(self._now(), userid=userid, ref=task_id)
        fields: list[tuple[str, ex.Value]] = [
            *ex.header(self.corp_id, int(self._now()), "template_card_event", from_user=userid),
            ("EventKey", event_key),
            ("TaskId", task_id),
            ("CardType", kind),
            ("ResponseCode", code),
            ("AgentID", self.agent_id),
        ]
        if selected_items:
            fields.append(("SelectedItems", ex.selected_items(selected_items)))
        return await self.deliver(fields, app_event=True)

    async def enter_agent(self, userid: str) -> DeliveryOutcome:
        """The member opens the app."""
        fields: list[tuple[str, ex.Value]] = [
            *ex.header(self.corp_id, int(self._now()), "enter_agent", from_user=userid),
            ("EventKey", ""),
            ("AgentID", self.agent_id),
        ]
        return await self.deliver(fields, app_event=True)

    async def send_text(self, userid: str, content: str) -> DeliveryOutcome:
        """The member sends a text message to the app."""
        fields: list[tuple[str, ex.Value]] = [
            ("ToUserName", self.corp_id),
            ("FromUserName", userid),
            ("CreateTime", int(self._now())),
            ("MsgType", "text"),
            ("Content", content),
            ("MsgId", self.state.new_id("9")),
            ("AgentID", self.agent_id),
        ]
        return await self.deliver(fields, app_event=True)

    def publish_moment(self, jobid: str, userid: str) -> bool:
        """The sender publishes an enterprise moment task from the client. WeCom has no callback
        for this either; it shows in get_moment_task."""
        return self.state.publish_moment(jobid, userid, self._now())

    def confirm_msg_task(self, msgid: str, userid: str) -> list[SendResult]:
        """The sender confirms a mass-send task. WeCom has no callback for this, so nothing is
        POSTed; results show up in get_groupmsg_task / get_groupmsg_send_result."""
        return self.state.confirm_msg_task(msgid, userid, self._now())
