"""A lifecycle test stack: the real service app and the WeCom sandbox, both over real HTTP.

``stack()`` starts the sandbox (seeded with the demo bank) on a loopback port, writes a small
playbook (sop/ + materials/) into a temporary folder, runs the service with a real
``WeComClient`` pointed at the sandbox, and gives a ``CallbackDriver`` that plays WeCom
towards the service's callback URL. Time is one FakeClock shared by all three. Workers are
off: tests step the inbox (``drain``), the outbox and the scheduler themselves.
"""

from __future__ import annotations

import contextlib
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from handlers.contacts.models import Member
from scrm.adapters.wecom.api import WeComClient
from scrm.adapters.wecom.token import MemoryTokenStore
from scrm.kernel.clock import FakeClock
from scrm.kernel.config import Settings
from scrm.kernel.models import OutboxAction
from scrm.kernel.outbox import PRIORITY_WELCOME
from scrm.kernel.service import Runtime
from scrm.sandbox import SANDBOX_AES_KEY, SANDBOX_AGENT_ID, SANDBOX_CORP_ID, SANDBOX_SECRET, SANDBOX_TOKEN
from scrm.sandbox.demo import DemoIds, seed_demo
from scrm.sandbox.driver import CallbackDriver, DeliveryOutcome
from scrm.sandbox.records import Limits, ReceivedCall
from scrm.sandbox.server import SandboxServer
from scrm.sandbox.state import SandboxState
from tests.conftest import make_settings
from tests.fakes.service import drain, running_service
from tests.fakes.wecom_sender import post_event

REPO = Path(__file__).resolve().parents[2]

POLICY = """\
timezone: Asia/Shanghai
quiet_hours: "21:00-08:30"
opt_out_tag: 偏好/免打扰
risk_disclosure: "理财非存款，产品有风险，投资须谨慎。"
"""

TAGS = """\
groups:
  渠道:
    owner: manager
    tags: [代发开卡, 网点大堂, 理财沙龙, 信用卡活动]
  兴趣:
    owner: manager
    tags: [理财, 健康, 旅游]
  偏好:
    owner: manager
    tags: [免打扰]
"""

# The four bank cases, wired to the sandbox demo's members (zhangwei, lina, chenjing, wangqiang).
CHANNELS = """\
default_welcome: t-welcome-default
channels:
  payroll-onboarding:
    name: 代发开卡
    managers: [zhangwei]
    tags: [渠道/代发开卡]
    welcome: t-welcome-payroll
  lobby-chengxi:
    name: 城西支行大堂
    managers: [zhangwei, lina]
    tags: [渠道/网点大堂]
  wealth-salon:
    name: 理财沙龙
    managers: [chenjing]
    skip_verify: false
    tags: [渠道/理财沙龙, 兴趣/理财]
    welcome: t-welcome-salon
  cc-campaign-q4:
    name: 信用卡四季度活动
    department: 2
    tags: [渠道/信用卡活动]
"""

# Caps are small so that tests reach them with a handful of joins.
GROUPS = """\
group_types:
  payroll:
    name: 代发福利群
    classify: {name: "代发"}
    member_cap: 500
    payday: 10
    welcome: t-group-welcome
    qr_pool: {size: 2}
  elderly:
    name: 银发兴趣群
    classify: {name: "银发|乐龄"}
    member_cap: 5
    welcome: t-group-welcome
    qr_pool: {size: 2}
  flash_sale:
    name: 快闪群
    classify: {name: "快闪|秒杀"}
    member_cap: 6
    lifetime_days: 7
  vip:
    name: 贵宾群
    classify: {owners: [chenjing]}
    member_cap: 50
  regional:
    name: 社区群
    classify: {chats: [wr-explicit-0001]}
    member_cap: 300
"""

MATERIALS = """\
- id: t-welcome-default
  type: text
  text: "{customer.name}您好，我是{manager.name}，很高兴为您服务。"
  approved: {by: 合规部-测试, at: 2025-01-01}
- id: t-welcome-payroll
  type: link
  text: "{customer.name}您好，代发开卡礼请查收。"
  link: {title: 代发开卡礼, url: "https://bank.example.com/gift", cover: "https://bank.example.com/gift.jpg"}
  approved: {by: 合规部-测试, at: 2025-01-01}
- id: t-welcome-salon
  type: text
  text: "感谢参加理财沙龙，我是{manager.name}。"
  approved: {by: 合规部-测试, at: 2025-01-01}
- id: t-welcome-crm
  type: text
  text: "尊敬的{crm.tier}客户您好。"
  approved: {by: 合规部-测试, at: 2025-01-01}
- id: t-group-welcome
  type: text
  channels: [group]
  text: "欢迎加入{group.name}！"
  approved: {by: 合规部-测试, at: 2025-01-01}
"""


def write_playbook(root: Path, *, channels: str = CHANNELS, groups: str = GROUPS,
                   materials: str = MATERIALS, tags: str = TAGS) -> tuple[Path, Path]:
    """A valid playbook under ``root``; returns (sop_dir, materials_dir)."""
    sop, mat = root / "sop", root / "materials"
    sop.mkdir(parents=True, exist_ok=True)
    mat.mkdir(parents=True, exist_ok=True)
    (sop / "policy.yaml").write_text(POLICY)
    (sop / "holidays.yaml").write_text((REPO / "sop" / "holidays.yaml").read_text())
    (sop / "tags.yaml").write_text(tags)
    (sop / "channels.yaml").write_text(textwrap.dedent(channels))
    (sop / "groups.yaml").write_text(textwrap.dedent(groups))
    (mat / "lifecycle.yaml").write_text(textwrap.dedent(materials))
    return sop, mat


def sandbox_settings(db_url: str, api_base: str, sop: Path, mat: Path, **sections: dict[str, Any]) -> Settings:
    wecom = {"corp_id": SANDBOX_CORP_ID, "token": SANDBOX_TOKEN, "encoding_aes_key": SANDBOX_AES_KEY,
             "secret": SANDBOX_SECRET, "agent_id": SANDBOX_AGENT_ID, "api_base": api_base,
             # Generous: the client's pacing sleeps on the FakeClock, which would move time.
             "per_api_per_minute": 600_000, **sections.pop("wecom", {})}
    return make_settings(db_url, wecom=wecom, playbook={"sop_dir": str(sop), "materials_dir": str(mat)}, **sections)


@dataclass
class Stack:
    clock: FakeClock
    state: SandboxState
    server: SandboxServer
    ids: DemoIds
    runtime: Runtime
    client: TestClient[Any, Any]
    driver: CallbackDriver
    settings: Settings
    wecom: WeComClient

    # -- stepping ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Process every due inbox row, then every due outbox action (welcomes first)."""
        await drain(self.runtime)
        await self.send()

    async def send(self) -> int:
        total = 0
        while True:
            n = await self.runtime.outbox.process_due(max_priority=PRIORITY_WELCOME)
            n += await self.runtime.outbox.process_due()
            if n == 0:
                return total
            total += n

    async def redeliver(self, outcome: DeliveryOutcome) -> int:
        """WeCom delivering the same event again (its retry); returns the HTTP status."""
        status, _ = await post_event(self.client, self.runtime.crypto(), outcome.xml,
                                     timestamp=str(int(self.clock.now().timestamp())))
        return status

    # -- looking ----------------------------------------------------------------------------

    def calls(self, api: str) -> list[ReceivedCall]:
        return self.state.received_calls(api)

    def app_messages(self, to: str | None = None) -> list[str]:
        return [str(d.content.get("text", {}).get("content", d.content.get("content", "")))
                for d in self.state.delivered_messages(kind="app", to=to)]

    async def outbox_rows(self, api: str | None = None) -> list[OutboxAction]:
        async with self.runtime.sessions() as s:
            rows = list((await s.scalars(select(OutboxAction).order_by(OutboxAction.id))).all())
        return [r for r in rows if api is None or r.payload.get("api") == api]


async def _seed_members(runtime: Runtime, state: SandboxState) -> None:
    """Member names come from the bank's staff directory (WeCom no longer returns them to new
    self-built apps); here they are copied from the sandbox, as an org import would."""
    async with runtime.sessions() as session, session.begin():
        session.add_all([Member(userid=m.userid, name=m.name, department=str(m.department[-1]))
                         for m in state.members.values()])


@contextlib.asynccontextmanager
async def stack(db_url: str, root: Path, *, limits: Limits | None = None, channels: str = CHANNELS,
                groups: str = GROUPS, materials: str = MATERIALS, tags: str = TAGS,
                sections: dict[str, dict[str, Any]] | None = None) -> AsyncIterator[Stack]:
    """The service with every feature, the sandbox tenant and a playbook under ``root``;
    ``sections`` adds settings (``{"crm": {...}}``; ``wecom`` keys merge into the sandbox's)."""
    clock = FakeClock()
    state = SandboxState(limits=limits or Limits(follow_user_page=2))
    ids = seed_demo(state)
    server = SandboxServer(state, clock)
    sandbox_http = TestServer(server.app)
    await sandbox_http.start_server()
    try:
        sop, mat = write_playbook(root, channels=channels, groups=groups, materials=materials, tags=tags)
        settings = sandbox_settings(db_url, str(sandbox_http.make_url("")).rstrip("/"), sop, mat, **(sections or {}))
        wecom = WeComClient(settings.wecom, token_store=MemoryTokenStore(clock), clock=clock)
        async with running_service(settings, clock=clock, wecom=wecom, playbook=True) as (runtime, client):
            await _seed_members(runtime, state)
            url = str(client.make_url("/wecom/callback"))
            async with CallbackDriver(state, runtime.crypto(), url, clock, seed=7) as driver:
                yield Stack(clock, state, server, ids, runtime, client, driver, settings, wecom)
    finally:
        await sandbox_http.close()
