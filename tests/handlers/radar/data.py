"""What the radar tests give the test stack: link materials, the radar and timeline handlers
only, and a ``[radar]`` section with a known signing key.

    async with stack(db_url, tmp_path, materials=MATERIALS, routers=ROUTERS, customers=True,
                     sections=radar(oauth=True)) as s:
"""

from __future__ import annotations

from typing import Any

from handlers.radar import handlers as radar_handlers
from handlers.timeline import handlers as timeline
from scrm.kernel.dispatch import Router

#: The small lifecycle playbook's welcome materials, plus a link material (m-fund) and a text one.
MATERIALS = """\
- id: m-fund
  type: link
  title: 稳健理财周报
  link: {title: 稳健理财周报, url: "https://bank.example.com/fund?week=47"}
  interest_tags: [兴趣/理财]
  approved: {by: 合规部-测试, at: 2025-01-01}
- id: m-plain
  type: text
  text: "您好"
  approved: {by: 合规部-测试, at: 2025-01-01}
- id: t-welcome-default
  type: text
  text: "{customer.name}您好，我是{manager.name}。"
  approved: {by: 合规部-测试, at: 2025-01-01}
- id: t-welcome-payroll
  type: text
  text: "代发开卡礼"
  approved: {by: 合规部-测试, at: 2025-01-01}
- id: t-welcome-salon
  type: text
  text: "理财沙龙"
  approved: {by: 合规部-测试, at: 2025-01-01}
- id: t-group-welcome
  type: text
  channels: [group]
  text: "欢迎加入{group.name}！"
  approved: {by: 合规部-测试, at: 2025-01-01}
"""

#: Only the radar and its timeline: no welcome or SOP handler reacts to what a test does.
ROUTERS: list[Router] = [radar_handlers.router, timeline.router]


def radar(*, oauth: bool = False, **settings: Any) -> dict[str, dict[str, Any]]:
    """The stack's ``sections`` for radar tests: a known signing key, OAuth on or off, and more
    ``[radar]`` settings (e.g. ``record_queue_max=2``). The OAuth page is the sandbox's."""
    return {"radar": {"signing_key": "test-radar-key", "oauth_enabled": oauth, **settings}}
