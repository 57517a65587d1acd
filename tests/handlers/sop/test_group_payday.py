"""Payroll groups plan "payday" from their employer's payday as the CRM gives it (push API or
file: ``chat_id, employer, payday``), and from the group type's default (sop/groups.yaml) when
the CRM said nothing for the group."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import select

from handlers.crm.importer import import_file
from handlers.crm.models import CrmGroup
from handlers.sop.models import SopSend
from tests.handlers.crm.receiver import HOOK_SECRET, SECRET, CrmStack, Receiver
from tests.handlers.sop.seeding import ROUTERS, local, seed
from tests.support.playbooks import write_shipped_playbook
from tests.support.stack import Stack, stack

START = local("2026-11-09", "09:00")  # a Monday; the payroll type's default payday is the 10th
CALENDAR = """\
calendar: salary
name: 发薪日提醒
group_type: payroll
steps: []
recurring:
  - {every: month, on: "payday", at: "12:10", send: t-text}
"""
API_CHAT, FILE_CHAT, DEFAULT_CHAT = "wrPayA", "wrPayB", "wrPayC"
CRM = {"crm": {"hmac_secret": SECRET}}


async def send_days(b: Stack) -> dict[str, list[date]]:
    async with b.runtime.sessions() as s:
        rows = (await s.execute(select(SopSend.target, SopSend.day).where(SopSend.source == "calendar:salary")
                                .order_by(SopSend.day))).all()
    out: dict[str, list[date]] = {}
    for target, day in rows:
        out.setdefault(target, []).append(day)
    return out


async def test_each_payroll_group_is_planned_on_its_employers_payday(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path, start=START, demo=False, routers=ROUTERS, sections=CRM,
                     playbook=write_shipped_playbook(tmp_path, calendars={"salary": CALENDAR})) as b:
        created = START - timedelta(days=40)
        await seed(b, groups=[(API_CHAT, "payroll", created), (FILE_CHAT, "payroll", created),
                              (DEFAULT_CHAT, "payroll", created)])
        c = CrmStack(b, Receiver(HOOK_SECRET))
        status, body = await c.post("/crm/v1/groups", {"groups": [
            {"chat_id": API_CHAT, "employer": "杭州某某科技有限公司", "payday": 13}]})
        assert status == 200 and body["accepted"] == 1
        f = tmp_path / "groups.csv"
        f.write_text(f"chat_id,employer,payday\n{FILE_CHAT},西湖区第一中学,12\n", encoding="utf-8")
        report = await import_file(f, b.runtime.sessions, b.runtime.inbox, b.clock)
        assert report.errors == [] and report.stored == 1
        await b.run_until(local("2026-11-14", "09:00"))
        assert await send_days(b) == {DEFAULT_CHAT: [date(2026, 11, 10)], FILE_CHAT: [date(2026, 11, 12)],
                                      API_CHAT: [date(2026, 11, 13)]}
        async with b.runtime.sessions() as s:
            stored = {g.chat_id: (g.employer, g.payday) for g in (await s.scalars(select(CrmGroup))).all()}
        assert stored == {API_CHAT: ("杭州某某科技有限公司", 13), FILE_CHAT: ("西湖区第一中学", 12)}


async def test_bad_group_records_are_refused(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path, start=START, demo=False, routers=ROUTERS, sections=CRM,
                     playbook=write_shipped_playbook(tmp_path)) as b:
        c = CrmStack(b, Receiver(HOOK_SECRET))
        status, body = await c.post("/crm/v1/groups", {"groups": [
            {"chat_id": API_CHAT, "payday": 10}, {"chat_id": FILE_CHAT, "payday": 32},
            {"chat_id": DEFAULT_CHAT, "pay_day": 5}]})
        assert status == 400 and body["error"] == "2 invalid record(s); nothing stored"
        assert body["details"][0].startswith("groups[1]: payday: ")
        assert body["details"][1].startswith("groups[2]: pay_day: ")
        f = tmp_path / "groups.csv"
        f.write_text(f"chat_id,employer,payday\n{API_CHAT},某公司,15号\n{FILE_CHAT},某学校,12\n", encoding="utf-8")
        report = await import_file(f, b.runtime.sessions, b.runtime.inbox, b.clock)
        assert report.stored == 1 and len(report.errors) == 1 and report.errors[0].startswith(f"{f}:2: payday: ")
        async with b.runtime.sessions() as s:
            assert [(g.chat_id, g.payday) for g in (await s.scalars(select(CrmGroup))).all()] == [(FILE_CHAT, 12)]
