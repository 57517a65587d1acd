"""A branch for SOP engine tests: the real service (SOP handlers) and the WeCom sandbox over real
HTTP, one FakeClock, a callback driver playing WeCom, and a playbook written per test.

The playbook is the shipped one without its calendars and paths (reminders, policy, holidays,
tags and the material library stay), plus the calendars, paths and materials a test gives.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from handlers.contacts.models import Customer, Follow, Member
from handlers.crm.models import CrmCustomer
from handlers.groups.models import GroupChat, GroupMember
from handlers.sop import handlers as sop_handlers
from handlers.sop.models import SopTask
from scrm.kernel.clock import FakeClock
from scrm.kernel.config import Settings
from scrm.kernel.models import DueJob, Occurrence, OutboxAction
from scrm.kernel.outbox import PRIORITY_WELCOME
from scrm.kernel.service import Runtime
from scrm.sandbox.driver import CallbackDriver
from scrm.sandbox.records import Card, ReceivedCall
from scrm.sandbox.state import SandboxState
from tests.conftest import make_settings
from tests.fakes.sandbox import Sandbox, running_sandbox
from tests.fakes.service import drain, running_service

ROOT = Path(__file__).resolve().parents[3]
SH = ZoneInfo("Asia/Shanghai")
PUBLIC_URL = "https://scrm.bank.example"
OLD = datetime(2026, 6, 1, tzinfo=UTC)

APPROVED = "approved: {by: 合规部-测试, at: 2026-01-01}"
MATERIALS = f"""\
- id: t-mini
  type: miniprogram
  channels: [group, private]
  text: 本月福利在小程序里领取。
  miniprogram: {{title: 测试福利, appid: wx3f2a9c7b1d4e6a80, page: pages/t/gift.html, cover: covers/topup.png}}
  {APPROVED}
- id: t-file
  type: file
  channels: [group, private]
  text: 本月存款利率表见附件。
  file: {{path: files/rates.pdf}}
  {APPROVED}
- id: t-link
  type: link
  channels: [group, private, manager]
  text: 本周理财精选，三分钟读完。
  link: {{title: 本周理财精选, desc: 稳健型产品一览, url: "https://wealth.example.com/weekly"}}
  interest_tags: [兴趣/理财]
  {APPROVED}
- id: t-text
  type: text
  channels: [group, private]
  text: 各位好，本周营业时间不变。
  {APPROVED}
- id: t-task
  type: text
  channels: [manager]
  text: 请回访这位客户，了解近期资金安排。
  {APPROVED}
"""
MANAGERS = (("zhangwei", "张伟", "lead1"), ("lead1", "刘组长", None))
PDF = b"%PDF-1.4\n% scrm test rate sheet\n" + b"0" * 200


def local(day: str, hhmm: str) -> datetime:
    """A Shanghai wall-clock time as an aware datetime."""
    return datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=SH)


def write_playbook(root: Path, *, calendars: dict[str, str] | None = None, paths: dict[str, str] | None = None,
                   materials: str = MATERIALS, edits: dict[str, dict[str, str]] | None = None) -> tuple[Path, Path]:
    """The shipped playbook minus its calendars and paths, plus the given ones; (sop_dir, materials_dir).

    ``edits`` replaces text in copied files, e.g. ``{"sop/policy.yaml": {"tasks: 30": "tasks: 2"}}``.
    """
    sop, mat = root / "sop", root / "materials"
    shutil.copytree(ROOT / "sop", sop)
    shutil.copytree(ROOT / "materials", mat)
    for sub in ("calendars", "paths"):
        for f in (sop / sub).glob("*.yaml"):
            f.unlink()
    for name, text in (calendars or {}).items():
        (sop / "calendars" / f"{name}.yaml").write_text(text)
    for name, text in (paths or {}).items():
        (sop / "paths" / f"{name}.yaml").write_text(text)
    (mat / "files").mkdir(exist_ok=True)
    (mat / "files" / "rates.pdf").write_bytes(PDF)
    (mat / "tests.yaml").write_text(materials)
    for rel, replacements in (edits or {}).items():  # {"sop/policy.yaml": {old: new}}
        path = root / rel
        text = path.read_text()
        for old, new in replacements.items():
            assert old in text, (rel, old)
            text = text.replace(old, new)
        path.write_text(text)
    return sop, mat


@dataclass
class Branch:
    clock: FakeClock
    sandbox: Sandbox
    runtime: Runtime
    client: TestClient[Any, Any]
    driver: CallbackDriver
    settings: Settings

    @property
    def state(self) -> SandboxState:
        return self.sandbox.state

    # -- seeding -----------------------------------------------------------------------------
    async def seed(self, *, managers: Iterable[tuple[str, str, str | None]] = MANAGERS,
                   customers: Iterable[str] = (), manager: str = "zhangwei", added: datetime = OLD,
                   groups: Iterable[tuple[str, str, datetime]] = (), crm: dict[str, dict[str, Any]] | None = None
                   ) -> None:
        """Members (userid, name, team lead), ``manager``'s customers, and groups (chat_id, type, created)."""
        st = self.state
        async with self.runtime.sessions() as s, s.begin():
            for userid, name, lead in managers:
                st.add_member(userid, name)
                s.add(Member(userid=userid, name=name, team_lead=lead))
            for ext in customers:
                st.add_customer(ext, external_userid=ext)
                st.add_follow(manager, ext, added.timestamp())
                s.add(Customer(external_userid=ext, name=ext, crm_id=f"crm-{ext}", updated_at=added))
                s.add(CrmCustomer(crm_id=f"crm-{ext}", attributes=(crm or {}).get(ext, {"name": ext}),
                                  updated_at=added))
                s.add(Follow(userid=manager, external_userid=ext, created_at=added, last_contact_at=self.clock.now()))
            for chat_id, group_type, created in groups:
                st.create_group(manager, f"群{chat_id}", created.timestamp(), chat_id=chat_id)
                s.add(GroupChat(chat_id=chat_id, name=f"群{chat_id}", owner=manager, group_type=group_type,
                                created_at=created, updated_at=created))
                s.add(GroupMember(chat_id=chat_id, member_id=manager, type=1, joined_at=created))

    # -- stepping ----------------------------------------------------------------------------
    async def step(self) -> None:
        """Let the pipeline run at the current time: scheduler, handlers, outbox."""
        await self.runtime.scheduler.tick()
        await drain(self.runtime)
        while await self.send():
            await drain(self.runtime)

    async def send(self) -> int:
        """Send every due outbox action (interactive ones first)."""
        total = 0
        while n := (await self.runtime.outbox.process_due(max_priority=PRIORITY_WELCOME)
                    + await self.runtime.outbox.process_due()):
            total += n
        return total

    async def run_until(self, end: datetime, *, late: timedelta = timedelta(minutes=1)) -> None:
        """Jump from one due job to the next (``late`` after it) until ``end``; then step at ``end``."""
        while True:
            async with self.runtime.sessions() as s:
                nxt = await s.scalar(select(func.min(DueJob.next_run_at)).where(DueJob.enabled.is_(True)))
            if nxt is None or nxt + late > end:
                break
            self.clock.set(max(self.clock.now(), nxt + late))
            await self.step()
        self.clock.set(max(self.clock.now(), end))
        await self.step()

    # -- looking -----------------------------------------------------------------------------
    def calls(self, api: str) -> list[ReceivedCall]:
        return self.state.received_calls(api)

    def cards(self, to: str) -> list[Card]:
        return [c for c in self.state.cards.values() if to in c.recipients]

    def texts_to(self, userid: str) -> list[str]:
        return [str(d.content["text"].get("content", ""))
                for d in self.state.delivered_messages(kind="app", to=userid) if d.msgtype == "text"]

    async def outbox(self, api: str | None = None) -> list[OutboxAction]:
        async with self.runtime.sessions() as s:
            rows = list((await s.scalars(select(OutboxAction).order_by(OutboxAction.id))).all())
        return [r for r in rows if api is None or r.payload.get("api") == api]

    async def occurrences(self, outcome: str | None = None) -> list[Occurrence]:
        async with self.runtime.sessions() as s:
            q = select(Occurrence).order_by(Occurrence.id)
            if outcome is not None:
                q = q.where(Occurrence.outcome == outcome)
            return list((await s.scalars(q)).all())

    async def tasks(self) -> list[SopTask]:
        async with self.runtime.sessions() as s:
            return list((await s.scalars(select(SopTask).order_by(SopTask.created_at, SopTask.key))).all())


@contextlib.asynccontextmanager
async def branch(db_url: str, root: Path, start: datetime, **playbook: Any) -> AsyncIterator[Branch]:
    """The service with only the SOP handlers, the sandbox, and a playbook under ``root``."""
    clock = FakeClock(start.astimezone(UTC))
    sop, mat = write_playbook(root, **playbook)
    settings = make_settings(db_url, playbook={"sop_dir": str(sop), "materials_dir": str(mat)},
                             server={"public_url": PUBLIC_URL})
    async with running_sandbox(clock) as sandbox, running_service(
            settings, clock=clock, wecom=sandbox.client, routers=[sop_handlers.router], playbook=True) as (rt, client):
        url = str(client.make_url("/wecom/callback"))
        async with CallbackDriver(sandbox.state, rt.crypto(), url, clock, seed=7) as driver:
            yield Branch(clock, sandbox, rt, client, driver, settings)
