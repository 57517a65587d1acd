"""What to say, filtered by the customer's tags (a material's ``for_tags``), on SQLite and
PostgreSQL: the 1:1 panel offers a material only to customers whose tags satisfy its rule, a
send of a material the customer's tags rule out is refused without recording anything, and a
task's script is still offered (and sendable) with its task whatever the rule says — its SOP
step already chose the customer.

The expected offers are worked out here from the tags ``seed`` gives each customer and the rules
below written as plain Python, never read back from the panel's code."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from handlers.contacts.models import Customer, Follow
from handlers.timeline.api import Timeline
from tests.handlers.sidebar.support import START, csrf_of, seed, sidebar_stack, sign_in
from tests.support.playbooks import APPROVED
from tests.support.stack import Stack

AUDIENCE_MATERIALS = f"""\
- id: a-finance
  type: text
  title: 理财客户专享
  text: 理财客户专享的问候。
  for_tags: {{any: [兴趣/理财, 兴趣/健康]}}
  {APPROVED}
- id: a-not-v1
  type: text
  title: 非V1客户
  text: 给还不是V1的客户。
  for_tags: {{none: [客户等级/V1]}}
  {APPROVED}
- id: a-both
  type: text
  title: 理财且健康
  text: 理财和健康都关心的客户。
  for_tags: {{all: [兴趣/理财, 兴趣/健康]}}
  {APPROVED}
- id: a-travel
  type: text
  title: 旅游客户
  text: 旅游季的问候。
  for_tags: {{any: [兴趣/旅游]}}
  {APPROVED}
"""
#: The rules above, as plain Python over a customer's tags.
RULES: dict[str, Callable[[set[str]], bool]] = {
    "a-finance": lambda t: bool(t & {"兴趣/理财", "兴趣/健康"}),
    "a-not-v1": lambda t: "客户等级/V1" not in t,
    "a-both": lambda t: {"兴趣/理财", "兴趣/健康"} <= t,
    "a-travel": lambda t: "兴趣/旅游" in t,
}
#: The customers' live tags as ``seed`` writes them (王芳's 兴趣/旅游 tag is deleted in WeCom).
TAGS = {"王芳": {"客户等级/V1", "兴趣/理财"}, "孙丽": set(), "赵敏": set()}
MANAGER = {"王芳": "zhangwei", "孙丽": "lina", "赵敏": "zhangwei"}

CALL_BACK = """\
path: call-back
name: 新客户回访
when: {}
steps:
  - {id: call, on: "added_at + 1 day", at: "10:00", task: s-manager-only, script: a-both}
"""
ADDED_TODAY = START - timedelta(hours=1)  # 赵敏 added zhangwei this morning


def suited(name: str) -> set[str]:
    return {m for m, rule in RULES.items() if rule(TAGS[name])}


async def offered(s: Stack, ext: str) -> list[dict[str, Any]]:
    resp = await s.client.get(f"/sidebar/data/customer/{ext}")
    assert resp.status == 200, await resp.text()
    offers: list[dict[str, Any]] = json.loads(await resp.text())["offers"]
    return offers


async def sends(s: Stack) -> int:
    async with s.runtime.sessions() as db:
        return int(await db.scalar(select(func.count()).select_from(Timeline).where(Timeline.kind == "sidebar.send"))
                   or 0)


async def post(s: Stack, ext: str, material: str, task: str = "") -> int:
    resp = await s.client.post(f"/sidebar/customer/{ext}/sent",
                               json={"material": material, "link": "", "mediaid": "", "task": task},
                               headers={"X-CSRF-Token": await csrf_of(s)})
    return resp.status


async def test_the_library_offers_and_sends_only_what_the_customers_tags_suit(db_url: str, tmp_path: Path) -> None:
    async with sidebar_stack(db_url, tmp_path, more_materials=AUDIENCE_MATERIALS) as s:
        await seed(s)
        assert suited("王芳") == {"a-finance"} and suited("孙丽") == {"a-not-v1"}  # the data tests both ways
        for name in ("王芳", "孙丽"):
            ext = s.ids.customers[name]
            await sign_in(s, MANAGER[name])
            ids = {o["material"] for o in await offered(s, ext)}
            assert ids & set(RULES) == suited(name), name
            assert "s-hours" in ids  # a material without a rule: offered to everyone
            before = await sends(s)
            for material in sorted(set(RULES) - suited(name)):  # a forged send of a filtered material
                assert await post(s, ext, material) == 400, (name, material)
            assert await sends(s) == before
            for material in sorted(suited(name)):
                assert await post(s, ext, material) == 200, (name, material)
            assert await sends(s) == before + len(suited(name))


async def test_a_tasks_script_goes_with_its_task_whatever_its_for_tags(db_url: str, tmp_path: Path) -> None:
    async with sidebar_stack(db_url, tmp_path, paths={"call-back": CALL_BACK},
                             more_materials=AUDIENCE_MATERIALS) as s:
        await seed(s)
        zhaomin = s.ids.customers["赵敏"]
        assert "a-both" not in suited("赵敏")
        async with s.runtime.sessions() as db, db.begin():
            db.add_all([Customer(external_userid=zhaomin, name="赵敏", updated_at=ADDED_TODAY),
                        Follow(userid="zhangwei", external_userid=zhaomin, remark="赵敏-新客", add_way=1,
                               created_at=ADDED_TODAY)])
        await s.run_until(ADDED_TODAY + timedelta(days=1, hours=1, minutes=5))
        (card,) = [c for c in s.cards("zhangwei") if "仅供客户经理参考" in c.card["sub_title_text"]]

        await sign_in(s, "zhangwei")
        offers = await offered(s, zhaomin)
        assert (offers[0]["material"], offers[0]["task"]) == ("a-both", card.task_id)
        assert [o["material"] for o in offers].count("a-both") == 1  # with the task only
        assert {o["material"] for o in offers} & set(RULES) == suited("赵敏") | {"a-both"}
        assert await post(s, zhaomin, "a-both") == 400  # from the library: not for this customer
        assert await post(s, zhaomin, "a-both", task=card.task_id) == 200
