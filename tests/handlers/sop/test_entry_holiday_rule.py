"""A calendar entry's own ``on_holiday`` wins over the calendar's: on 国庆 a weekly post marked
``skip`` is dropped (recorded as a skip with its reason) while a one-off post in the same slot
moves to the next workday and goes out once."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from scrm.kernel.models import Occurrence
from tests.handlers.sop.seeding import ROUTERS, local, seed
from tests.support.playbooks import SOP_MATERIALS, write_shipped_playbook
from tests.support.stack import stack

CHAT = "wrHolidayChat"
# The group opens on Monday 2026-09-28; the only Thursday in days 0–6 is 10-01 (国庆节, off
# until 10-07), so each entry has exactly one occurrence.
CALENDAR = """\
calendar: holiday-rules
group_type: regional
recurring:
  - {id: weekly, every: week, on: thu, at: "10:00", from_day: 0, until_day: 6, send: t-text, on_holiday: skip}
  - {id: one-off, every: week, on: thu, at: "10:00", from_day: 0, until_day: 6, send: t-link}
"""


async def test_an_entry_may_skip_a_holiday_while_the_calendar_moves_its_other_posts(db_url: str,
                                                                                   tmp_path: Path) -> None:
    playbook = write_shipped_playbook(tmp_path, calendars={"holiday": CALENDAR}, materials=SOP_MATERIALS)
    async with stack(db_url, tmp_path, start=local("2026-09-30", "09:00"), demo=False, routers=ROUTERS,
                     playbook=playbook) as b:
        await seed(b, groups=[(CHAT, "regional", local("2026-09-28", "08:00"))])
        await b.run_until(local("2026-10-08", "10:05"))
        sent = [c.body["text"]["content"] for c in b.calls("externalcontact/add_msg_template")]
        assert sent == ["本周理财精选，三分钟读完。"]  # t-link, moved from 10-01; t-text never
        async with b.runtime.sessions() as s:
            rows = (await s.scalars(select(Occurrence).where(Occurrence.job_key.startswith("sop:")))).all()
        outcomes = {(o.job_key, o.occurrence_key, o.outcome, o.reason) for o in rows}
        assert ("sop:calendar:holiday-rules:weekly", f"{CHAT}:2026-10-01", "skipped",
                "holiday: not a workday") in outcomes
        assert not [o for o in rows if o.job_key == "sop:calendar:holiday-rules:one-off" and o.outcome == "skipped"]
