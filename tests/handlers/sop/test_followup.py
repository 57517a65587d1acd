"""Mass-send follow-up: a task the sender has not confirmed in WeCom is reminded with
remind_groupmsg_send — at most 3 times in any 24 hours, never in quiet hours — and no more
once it is confirmed or 3 days old."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from pathlib import Path

from sqlalchemy import select

from handlers.sop.models import SopMassSend
from tests.handlers.sop.seeding import ROUTERS, SH, local, seed
from tests.support.playbooks import write_shipped_playbook
from tests.support.stack import Stack, stack

START = local("2026-11-02", "09:00")
CHAT = "wrFollowChat"
CALENDAR = """\
calendar: follow
name: 跟进测试
group_type: regional
steps:
  - {id: notice, day: 0, at: "10:00", send: t-text}
"""


def reminds(b: Stack) -> list[float]:
    return [c.at for c in b.calls("externalcontact/remind_groupmsg_send")]


async def test_unconfirmed_task_is_reminded_at_most_three_times_a_day(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path, start=START, demo=False, routers=ROUTERS,
                     playbook=write_shipped_playbook(tmp_path, calendars={"follow": CALENDAR})) as b:
        await seed(b, groups=[(CHAT, "regional", START)])
        await b.run_until(START + timedelta(days=5))
        (template,) = b.state.msg_templates.values()
        times = reminds(b)
        sent_at = template.create_time
        assert times and min(times) - sent_at >= 2 * 3600
        for t in times:  # WeCom's limit, over every sliding day
            assert sum(1 for u in times if t - 86400 < u <= t) <= 3
        assert sum(1 for t in times if t < sent_at + 86400) == 3
        assert max(times) <= sent_at + 3 * 86400  # given up after 3 days
        hours = [datetime.fromtimestamp(t, SH).time() for t in times]
        assert all(time(8, 30) <= h < time(21, 0) for h in hours), hours  # not in quiet hours
        rows = await b.outbox_rows("externalcontact/remind_groupmsg_send")
        assert len(rows) == len(times) and {r.status for r in rows} == {"sent"}  # WeCom never refused one


async def test_confirmed_task_is_not_reminded(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path, start=START, demo=False, routers=ROUTERS,
                     playbook=write_shipped_playbook(tmp_path, calendars={"follow": CALENDAR})) as b:
        await seed(b, groups=[(CHAT, "regional", START)])
        await b.run_until(local("2026-11-02", "11:30"))
        (msgid,) = b.state.msg_templates
        b.driver.confirm_msg_task(msgid, "zhangwei")
        await b.run_until(START + timedelta(days=4))
        assert reminds(b) == []
        async with b.runtime.sessions() as s:
            (row,) = (await s.scalars(select(SopMassSend))).all()
        assert row.msgid == msgid and row.confirmed and row.reminds == []
        assert [d.to for d in b.state.delivered_messages(kind="mass")] == [CHAT]
