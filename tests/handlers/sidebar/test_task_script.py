"""A path step's task with a ``script:``, on SQLite and PostgreSQL: the planner's card tells the
manager the words are ready and keeps the script on the task; the sidebar offers it first,
rendered for this customer; sending it (the page reports the task) marks the task's script
sent once — which the SOP effect page counts as delivered — and a send that claims another
material, another customer's task or a made-up task is refused without recording anything."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from handlers.contacts.models import Customer, Follow
from handlers.sop.api import SopTask
from handlers.timeline.api import Timeline
from tests.handlers.sidebar.support import START, csrf_of, seed, sidebar_stack, sign_in
from tests.support.stack import Stack

CALL_BACK = """\
path: call-back
name: 新客户回访
when: {}
steps:
  - {id: call, on: "added_at + 1 day", at: "10:00", task: s-manager-only, script: s-hours}
"""
ADDED_TODAY = START - timedelta(hours=1)  # 赵敏 added zhangwei this morning


async def panel(s: Stack, ext: str) -> dict[str, Any]:
    resp = await s.client.get(f"/sidebar/data/customer/{ext}")
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = json.loads(await resp.text())
    return body


async def test_a_steps_script_is_offered_first_and_its_send_marks_the_task(db_url: str, tmp_path: Path) -> None:
    async with sidebar_stack(db_url, tmp_path, paths={"call-back": CALL_BACK}) as s:
        demo = await seed(s)
        zhaomin = s.ids.customers["赵敏"]
        async with s.runtime.sessions() as db, db.begin():
            db.add_all([Customer(external_userid=zhaomin, name="赵敏", updated_at=ADDED_TODAY),
                        Follow(userid="zhangwei", external_userid=zhaomin, remark="赵敏-新客", add_way=1,
                               created_at=ADDED_TODAY)])
        await s.run_until(ADDED_TODAY + timedelta(days=1, hours=1, minutes=5))
        (card,) = [c for c in s.cards("zhangwei") if "仅供客户经理参考" in c.card["sub_title_text"]]
        assert "聊天工具栏中一键发送" in card.card["sub_title_text"]
        async with s.runtime.sessions() as db:
            task = await db.get(SopTask, card.task_id)
        assert task is not None and task.detail["script"] == "s-hours" and "script_sent_at" not in task.detail

        await sign_in(s, "zhangwei")
        body = await panel(s, zhaomin)
        first = body["offers"][0]
        assert (first["material"], first["task"]) == ("s-hours", card.task_id)
        assert first["messages"] == [{"msgtype": "text", "text": {"content": "赵敏，本周营业时间不变，有事随时找我。"}}]

        token = await csrf_of(s)
        sent = f"/sidebar/customer/{zhaomin}/sent"

        async def post(path: str, **body: str) -> int:
            resp = await s.client.post(path, json={"link": "", "mediaid": "", **body}, headers={"X-CSRF-Token": token})
            return resp.status

        # Refused: another material than the task's script; the task in another customer's chat;
        # a task that does not exist.
        assert await post(sent, material="s-weekly", task=card.task_id) == 400
        assert await post(f"/sidebar/customer/{demo.wangfang}/sent", material="s-hours", task=card.task_id) == 404
        assert await post(sent, material="s-hours", task="no-such-task") == 404
        async with s.runtime.sessions() as db:
            task = await db.get(SopTask, card.task_id)
            notes = (await db.scalars(select(Timeline.detail).where(Timeline.kind == "sidebar.send"))).all()
        assert task is not None and "script_sent_at" not in task.detail and list(notes) == []

        s.clock.advance(minutes=10)
        first_send = s.clock.now()
        assert await post(sent, material="s-hours", task=card.task_id) == 200
        s.clock.advance(minutes=10)
        assert await post(sent, material="s-hours", task=card.task_id) == 200  # said again: the first counts
        async with s.runtime.sessions() as db:
            task = await db.get(SopTask, card.task_id)
            notes = (await db.scalars(select(Timeline.detail).where(Timeline.kind == "sidebar.send"))).all()
        assert task is not None and task.detail["script_sent_at"] == first_send.isoformat()
        assert [n["task"] for n in notes] == [card.task_id, card.task_id]
        # The library send of the same material without a task is just a send.
        assert await post(sent, material="s-hours") == 200
