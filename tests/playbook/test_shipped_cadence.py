"""The shipped group calendars keep the rhythm the practice asks for.

Payroll groups (代发群) get a light touch: one or two posts a week, from the first week on and
for as long as the group lives, with a 理财小知识 every pay month (the opening post promises it).
Elderly interest groups (银发兴趣群) the same, with a monthly check-in and quiz. Interest, event
and community groups stay under 100 members.

Every figure is counted here from the planner's output (``calendar_occurrences``) for groups
created on every day of a year and more, so a calendar edit that bunches posts, leaves a week
silent or drops the monthly column fails, whatever the weekday or month a group starts on. The
only exceptions are the holidays', and they are stated: a weekly post on a holiday is dropped
(that week may be silent), a one-off post moves to the next workday (it may be that week's
third, never more).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import date, timedelta
from functools import cache
from itertools import pairwise

import pytest

from handlers.crm.api import EVENT_KINDS
from handlers.membership.rules import load_membership
from scrm.playbook import Playbook, load_playbook
from scrm.playbook.plan import Occurrence, calendar_occurrences

from .factory import REPO

TODAY = date(2026, 11, 23)
WEEKS = 26
THU, WED = 3, 2


@cache
def shipped() -> Playbook:
    return load_playbook(REPO / "sop", REPO / "materials", today=TODAY)


def creation_days() -> Iterator[date]:
    """Every day from 2026-01-01 to 2027-01-31: all weekdays, month ends, 春节 and 国庆 twice."""
    day = date(2026, 1, 1)
    while day <= date(2027, 1, 31):
        yield day
        day += timedelta(days=1)


def plan(calendar: str, created: date, payday: int | None = None) -> list[Occurrence]:
    pb = shipped()
    end = created + timedelta(weeks=WEEKS)
    return calendar_occurrences(pb, pb.calendars[calendar], created, created, end, payday=payday)


def group_posts(occurrences: list[Occurrence]) -> list[Occurrence]:
    return [o for o in occurrences if o.to == "group" and o.action.startswith("send ")]


def week_of(day: date) -> tuple[int, int]:
    year, week, _ = day.isocalendar()
    return year, week


def check_weekly_rhythm(posts: list[Occurrence], created: date, lane_weekday: int) -> None:
    """1–2 posts in every ISO week whose lane day is a workday, from the week of the first lane
    day on; a week may go silent only when its lane day is a holiday; a third post only when a
    post was moved into that week from a holiday or weekend."""
    pb = shipped()
    by_week: dict[tuple[int, int], list[Occurrence]] = defaultdict(list)
    for o in posts:
        by_week[week_of(o.at.date())].append(o)
    lane = created + timedelta(days=(lane_weekday - created.weekday()) % 7)
    last = created + timedelta(weeks=WEEKS) - timedelta(days=7)  # the last week is cut off by the window
    while lane <= last:
        week = by_week.get(week_of(lane), [])
        moved = [o for o in week if o.note.startswith("moved from")]
        context = f"group created {created}, week of {lane}: {[(str(o.at.date()), o.action) for o in week]}"
        assert len(week) - len(moved) <= 2, context
        assert len(week) <= 2 or moved, context
        if pb.work_calendar.is_workday(lane):
            assert week, context
        lane += timedelta(days=7)


@pytest.mark.parametrize("payday", [None, 1, 15, 25, 31])
def test_payroll_groups_hear_one_or_two_posts_a_week(payday: int | None) -> None:
    for created in creation_days():
        check_weekly_rhythm(group_posts(plan("payroll-groups", created, payday)), created, THU)


def test_payroll_groups_average_between_one_and_two_posts_a_week_in_the_first_13_weeks() -> None:
    # The figure the issue measured (0.6 a week before): posts per week over the first 13 weeks.
    for created in creation_days():
        first = [o for o in group_posts(plan("payroll-groups", created)) if o.at.date() < created + timedelta(weeks=13)]
        assert 1.0 <= len(first) / 13 <= 2.0, (created, len(first))


WARM_UP = ["payroll-columns-plan", "payroll-app-guide", "payroll-phone-topup-offer", "payroll-feedback-poll",
           "payroll-activity-followup"]


def test_the_payroll_warm_up_series_goes_out_once_each_in_order_within_13_weeks() -> None:
    for created in creation_days():
        occ = plan("payroll-groups", created)
        sends = [o.action.removeprefix("send ") for o in group_posts(occ)]
        series = [m for m in sends if m in WARM_UP]
        assert series == WARM_UP, (created, series)  # none lost to a holiday, none twice
        assert all(o.at.date() < created + timedelta(weeks=13) for o in group_posts(occ)
                   if o.action.removeprefix("send ") in WARM_UP), created
        # the payroll-only product: once, 1:1 to members (not to the group), after the poll
        wealth = [o for o in occ if o.action == "send payroll-exclusive-wealth"]
        assert [o.to for o in wealth] == ["members"], created
        poll = next(o for o in occ if o.action == "send payroll-feedback-poll")
        assert poll.at <= wealth[0].at, created  # the same day only after 春节


@pytest.mark.parametrize("payday", [None, 1, 10, 15, 25, 28, 31])
def test_payroll_groups_get_a_finance_column_every_pay_month(payday: int | None) -> None:
    pb = shipped()
    opening = pb.materials["payroll-columns-plan"].text or ""
    assert "理财小知识" in opening and "每月一篇" in opening  # what the opening post promises
    for created in creation_days():
        occ = group_posts(plan("payroll-groups", created, payday))
        salary = [o.at for o in occ if o.action == "send payroll-salary-notice"]
        tips = [o.at for o in occ if o.action == "send payroll-finance-tips"]
        assert len(salary) >= 5 and len(tips) >= 5, (created, salary, tips)
        for a, b in pairwise(salary):
            assert sum(a < t < b for t in tips) == 1, (created, a, b, tips)  # one per pay month
        gaps = [(b - a).days for a, b in pairwise(tips)]
        assert min(gaps) >= 21 and max(gaps) <= 45, (created, tips)
        # never in the salary notice's week: that would make a third post
        assert not {week_of(t.date()) for t in tips} & {week_of(s.date()) for s in salary}, created


def test_elderly_groups_hear_one_or_two_posts_a_week() -> None:
    for created in creation_days():
        check_weekly_rhythm(group_posts(plan("elderly-groups", created)), created, WED)


def test_elderly_groups_have_a_check_in_and_a_quiz_every_month() -> None:
    """Something to do every month (the practice: at least one activity a month): from the
    month after the group opens, a check-in or a quiz; from the month after that, both, once."""
    for created in creation_days():
        posts = group_posts(plan("elderly-groups", created))
        end = created + timedelta(weeks=WEEKS)
        month = (created.replace(day=1) + timedelta(days=31)).replace(day=1)
        first = True
        while (month + timedelta(days=31)).replace(day=1) <= end:
            this = Counter(o.action for o in posts if (o.at.year, o.at.month) == (month.year, month.month))
            checkin, quiz = this["send elderly-monthly-checkin"], this["send elderly-finance-quiz"]
            assert (checkin, quiz) == (1, 1) or (first and checkin + quiz == 1), (created, month, checkin, quiz)
            month, first = (month + timedelta(days=31)).replace(day=1), False


def test_interest_event_and_community_groups_stay_under_100_members() -> None:
    types = shipped().group_types
    for key in ("elderly", "event", "regional"):
        cap = types[key].member_cap
        assert cap is not None and cap < 100, (key, cap)


def test_pop_up_groups_are_event_groups_not_sales_groups() -> None:
    pb = shipped()
    event = pb.group_types["event"]
    assert event.name == "活动快闪群" and event.lifetime_days == 7
    assert pb.classify_group("健康讲座活动快闪群", "someone", "wr1") == "event"
    assert pb.calendars["event-groups"].group_type == "event"
    # Nobody reads "flash sale" (闪购) anywhere: playbook, materials, the managers' notices.
    texts = [*sorted((REPO / "sop").rglob("*.yaml")), *sorted((REPO / "materials").rglob("*.yaml")),
             REPO / "handlers" / "groups" / "texts.py"]
    for path in texts:
        found = re.findall(r"闪购|秒杀|flash[_ -]?sale", path.read_text(), flags=re.IGNORECASE)
        assert not found, (path, found)


REWARDS = {"签到": "checkin", "答题": "quiz", "问答": "quiz"}


def test_the_rewards_materials_promise_are_earned_in_the_membership_ledger() -> None:
    """A material that promises 积分/成长值 for a check-in or a quiz names something the ledger
    (sop/membership.yaml) pays, in both currencies, and states no amount of its own."""
    rules = load_membership(REPO / "sop", EVENT_KINDS)
    promising = [m for m in shipped().materials.values()
                 if m.text and ("积分" in m.text or "成长值" in m.text) and any(w in m.text for w in REWARDS)]
    assert {m.id for m in promising} >= {"elderly-monthly-checkin", "elderly-finance-quiz"}
    for material in promising:
        text = material.text or ""
        assert not re.search(r"\d+\s*(积分|分|成长值)", text), material.id  # amounts live in one place
        for word, behaviour in REWARDS.items():
            if word not in text:
                continue
            found = [b for b in rules.behaviours if behaviour in b.name or behaviour in b.on]
            assert found, (material.id, behaviour)
            assert all(b.points > 0 and b.growth > 0 for b in found), (material.id, found)
