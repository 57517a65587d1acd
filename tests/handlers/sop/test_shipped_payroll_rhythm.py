"""The shipped payroll calendar, run by the real service on the fake clock: a payroll group
created on a Monday hears one or two posts in each of its first six weeks: the warm-up series in
order, the weekly welfare post between, the salary notice and then the 理财小知识 of its pay month.

Counted from what reached the WeCom sandbox week by week (``tests/playbook/test_shipped_cadence``
counts the plan for every creation day; this is the same promise kept by the scheduler, the
planner and the outbox together).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tests.handlers.sop.seeding import ROUTERS, local, seed
from tests.support.playbooks import REPO, write_shipped_playbook
from tests.support.stack import stack

CHAT = "wrPayrollRhythm"
CREATED = local("2026-11-30", "08:00")  # a Monday; the six weeks include 元旦 2027
WEEKS = 6
# What each post starts with (from materials/payroll.yaml), in the order the calendar promises.
WARM_UP = ["各位好，我是本群的服务专员", "手机银行里有个“代发专区”", "代发福利第一期", "话费福利用着怎么样"]
SALARY, TIPS, WELFARE = "工资应已到账", "理财小知识上新", "叮，本周代发福利来了"


async def test_a_payroll_group_hears_one_or_two_posts_a_week(db_url: str, tmp_path: Path) -> None:
    calendar = (REPO / "sop" / "calendars" / "payroll.yaml").read_text()
    playbook = write_shipped_playbook(tmp_path, calendars={"payroll": calendar})
    async with stack(db_url, tmp_path, start=CREATED + timedelta(minutes=5), demo=False, routers=ROUTERS,
                     playbook=playbook) as b:
        await seed(b, groups=[(CHAT, "payroll", CREATED)])
        weeks: list[list[str]] = []
        for week in range(1, WEEKS + 1):
            seen = len(b.calls("externalcontact/add_msg_template"))
            await b.run_until(CREATED.replace(hour=23, minute=59) + timedelta(days=7 * week - 1))
            calls = b.calls("externalcontact/add_msg_template")[seen:]
            assert all(c.body["chat_type"] == "group" for c in calls)
            weeks.append([c.body["text"]["content"] for c in calls])

    assert all(1 <= len(w) <= 2 for w in weeks), weeks  # one or two posts every week
    posts = [text for week in weeks for text in week]
    warm_up = [p for p in posts if any(p.startswith(w) for w in WARM_UP)]
    assert [next(w for w in WARM_UP if p.startswith(w)) for p in warm_up] == WARM_UP
    # Payday 12-10 (the type's default): one salary notice, then one column (both texts start
    # with the month: "12月工资应已到账").
    salary = [i for i, p in enumerate(posts) if SALARY in p]
    tips = [i for i, p in enumerate(posts) if TIPS in p]
    assert len(salary) == 1 and len(tips) == 1 and salary[0] < tips[0]
    assert sum(p.startswith(WELFARE) for p in posts) == WEEKS - len(WARM_UP)  # the other Thursdays
