"""What WeCom sends during a chaos run: adds at a steady rate (each with a WelcomeCode), group
events (groups created, customers joining and leaving) and tag events (a manager editing a
customer's tags in the client, an admin creating and renaming corp tags).

Every event is delivered until acknowledged (``Poster``). Events of one group chat go one after
another, as WeCom sends them; joins and tag edits pick customers already welcomed, so they are
known to the service by then (a notice names them).
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from scrm.sandbox.demo import DemoIds
from scrm.sandbox.driver import DeliveryOutcome
from scrm.sandbox.state import SandboxState
from tests.chaos.playbook import CHANNELS
from tests.chaos.wecom import Delivered, Poster, QueuingDriver

WELCOME_API = "externalcontact/send_welcome_msg"

# (name, owner, how many customers join): the flash group (cap 6) and the elderly group (cap 5)
# go over their caps (one notice each), every join of the flash group is a notice to its owner.
GROUPS = [("快闪群-双十一", "zhangwei", 9), ("乐龄俱乐部", "lina", 7), ("代发福利群-城西", "zhangwei", 10_000),
          ("贵宾理财群", "chenjing", 40)]
FIRST_JOIN = 40  # the add from which customers start joining groups
JOIN_EVERY = 5  # adds per join
LEAVE_EVERY = 60  # adds per leave (of the payroll group, which has no cap notice to repeat)
EDIT_EVERY = 16  # adds per tag edit by a manager
CORP_TAG_EVERY = 125  # adds per corp tag created by the admin; every second one is renamed later


@dataclass
class Add:
    """One new customer and what became of its delivery."""

    i: int
    userid: str
    state: str
    name: str
    ext: str
    code: str
    issued_at: float
    expires_at: float
    delivery: Delivered | None = None

    @property
    def ack_at(self) -> float | None:
        return None if self.delivery is None else self.delivery.ack_at

    @property
    def acked_in_window(self) -> bool:
        return self.ack_at is not None and self.ack_at < self.expires_at


@dataclass
class Workload:
    state: SandboxState
    demo: DemoIds
    driver: QueuingDriver
    poster: Poster
    adds_total: int
    rate: float  # adds per second
    seed: int
    adds: list[Add] = field(default_factory=list)
    events: dict[str, int] = field(default_factory=dict)  # kind → acknowledged
    late_acks: list[float] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _welcomed_seen: int = 0
    _joinable: deque[tuple[str, str]] = field(default_factory=deque)  # (ext, userid) welcomed, not used yet
    _editable: deque[tuple[str, str]] = field(default_factory=deque)
    _by_code: dict[str, Add] = field(default_factory=dict)
    joined: dict[str, list[str]] = field(default_factory=dict)  # chat_id → customers whose join was acked
    chat_names: dict[str, str] = field(default_factory=dict)
    _chats: list[tuple[str, str, int]] = field(default_factory=list)  # (chat_id, name, quota left)
    _chat_members: dict[str, list[str]] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    _corp_tags: dict[int, str] = field(default_factory=dict)  # k → tag id
    _corp_tag_count: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    # ------------------------------------------------------------------ the schedule
    async def run(self) -> None:
        """Issue every event on its schedule (returns when the last one is issued, not acked)."""
        loop = asyncio.get_running_loop()
        for name, owner, quota in GROUPS:
            self._spawn(self._create_group(name, owner, quota))
        start = loop.time()
        channels = list(CHANNELS)
        for i in range(self.adds_total):
            await asyncio.sleep(max(0.0, start + i / self.rate - loop.time()))
            state = channels[i % len(channels)]
            userid = self.rng.choice(CHANNELS[state].managers)
            out = await self.driver.add_external_contact(userid, name=f"客户{i:04d}", state=state)
            self._record_add(i, userid, state, out)
            self._note_welcomed()
            if i >= FIRST_JOIN and i % JOIN_EVERY == 0:
                self._join()
            if i % LEAVE_EVERY == LEAVE_EVERY - 1:
                self._leave()
            if i % EDIT_EVERY == EDIT_EVERY - 1:
                self._edit_tags()
            if i % CORP_TAG_EVERY == CORP_TAG_EVERY // 2:
                self._corp_tag()

    async def acked(self) -> None:
        """Until every issued event has been acknowledged."""
        while self._tasks:
            tasks, self._tasks = self._tasks, []
            await asyncio.gather(*tasks)

    def pending(self) -> int:
        return sum(1 for t in self._tasks if not t.done())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        self._tasks.append(asyncio.ensure_future(coro))

    def _count(self, kind: str) -> None:
        self.events[kind] = self.events.get(kind, 0) + 1

    # ------------------------------------------------------------------ adds
    def _record_add(self, i: int, userid: str, state: str, out: DeliveryOutcome) -> None:
        code = out.fields["WelcomeCode"]
        grant = self.state.welcome_codes[code]
        add = Add(i, userid, state, f"客户{i:04d}", out.fields["ExternalUserID"], code, grant.issued_at,
                  grant.issued_at + grant.ttl_s)
        self.adds.append(add)
        self._by_code[code] = add

        async def deliver() -> None:
            add.delivery = await self.poster.deliver(out)
            self._count("add_external_contact")

        self._spawn(deliver())

    def _note_welcomed(self) -> None:
        """Customers welcomed since the last look become candidates for joins and edits."""
        calls = self.state.received_calls(WELCOME_API)
        for call in calls[self._welcomed_seen:]:
            add = self._by_code.get(str(call.body.get("welcome_code", "")))
            if add is not None:
                self._joinable.append((add.ext, add.userid))
                self._editable.append((add.ext, add.userid))
        self._welcomed_seen = len(calls)

    # ------------------------------------------------------------------ groups
    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    async def _create_group(self, name: str, owner: str, quota: int) -> None:
        async with self._lock("groups"):
            out = await self.driver.create_group(owner, name)
            chat_id = out.fields["ChatId"]
            self._chats.append((chat_id, name, quota))
            self._chat_members[chat_id] = []
            self.joined[chat_id] = []
            self.chat_names[chat_id] = name
            async with self._lock(chat_id):
                await self.poster.deliver(out)
        self._count("chat_create")

    def _join(self) -> None:
        open_chats = [(i, c) for i, c in enumerate(self._chats) if c[2] > 0]
        if not open_chats or not self._joinable:
            return
        index, (chat_id, name, quota) = open_chats[(len(self.adds) // JOIN_EVERY) % len(open_chats)]
        self._chats[index] = (chat_id, name, quota - 1)
        ext, _ = self._joinable.popleft()

        async def join() -> None:
            async with self._lock(chat_id):
                out = await self.driver.join_group(chat_id, [ext], join_scene=3)
                self._chat_members[chat_id].append(ext)
                await self.poster.deliver(out)
                self.joined[chat_id].append(ext)
            self._count("chat_add_member")

        self._spawn(join())

    def _leave(self) -> None:
        payroll = next((c for c in self._chats if c[1].startswith("代发")), None)
        if payroll is None:
            return
        chat_id = payroll[0]

        async def leave() -> None:
            async with self._lock(chat_id):
                members = self._chat_members[chat_id]
                if not members:
                    return
                ext = members.pop(0)
                out = await self.driver.leave_group(chat_id, [ext], quit_scene=0)
                await self.poster.deliver(out)
            self._count("chat_del_member")

        self._spawn(leave())

    # ------------------------------------------------------------------ tags
    def _edit_tags(self) -> None:
        if not self._editable:
            return
        ext, userid = self._editable.popleft()
        tag = self.demo.tags["兴趣/健康" if len(self.adds) % 2 else "兴趣/旅游"]

        async def edit() -> None:
            out = await self.driver.edit_external_contact(userid, ext, add_tags=[tag])
            await self.poster.deliver(out)
            self._count("edit_external_contact")

        self._spawn(edit())

    def _corp_tag(self) -> None:
        k = self._corp_tag_count
        self._corp_tag_count += 1

        async def admin() -> None:
            async with self._lock("corp-tags"):
                out = await self.driver.create_tag("活动", f"双十一{k:02d}")
                group = self.state.live_group_by_name("活动")
                assert group is not None
                tag = next(t for t in self.state.live_tags(group) if t.name == f"双十一{k:02d}")
                self._corp_tags[k] = tag.id
                await self.poster.deliver(out)
                self._count("tag_create")
                if k % 2 == 1:  # rename the one before
                    out = await self.driver.edit_tag(self._corp_tags[k - 1], f"双十一{k - 1:02d}-返场")
                    await self.poster.deliver(out)
                    self._count("tag_update")

        self._spawn(admin())
