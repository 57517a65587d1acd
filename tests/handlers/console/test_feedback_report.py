"""``scrm report feedback`` (and the BI API's ``/api/v1/reports/feedback``): survey answers in the
viewer's part of the bank, credited to the manager who sent the link, per survey — answers by
category and the NPS, or a satisfaction survey's mean — over a period, whole or by unit, on SQLite
and PostgreSQL. Every expected figure is worked out here from the answers written, with the NPS
bands (9–10 promoter, 7–8 passive, 0–6 detractor) and the 1–5 scale's mean."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from handlers.console.access import Grant, Role
from handlers.console.reports import ask, run
from handlers.feedback.api import FeedbackAnswer
from tests.handlers.console.support import console_stack
from tests.support.stack import Stack

ZONE = "Asia/Shanghai"
WEST = "杭州分行/城西支行/代发服务团队"  # zhangwei, lina, wangqiang
EAST = "杭州分行/城东支行/零售客户团队"  # gaofei, xuming
TODAY = date(2026, 11, 30)
# (survey, kind, score, sender, days before TODAY); "" sends: a link no manager of the bank sent.
ANSWERS = [
    ("nps-q4", "nps", 10, "zhangwei", 1), ("nps-q4", "nps", 9, "zhangwei", 2), ("nps-q4", "nps", 3, "lina", 3),
    ("nps-q4", "nps", 7, "wangqiang", 4), ("nps-q4", "nps", 6, "gaofei", 5), ("nps-q4", "nps", 0, "gaofei", 6),
    ("nps-q4", "nps", 10, "xuming", 7), ("nps-q4", "nps", 8, "", 8),
    ("nps-q4", "nps", 10, "zhangwei", 40),  # before a 30-day period
    ("csat-branch", "csat", 5, "lina", 2), ("csat-branch", "csat", 2, "gaofei", 3), ("csat-branch", "csat", 4, "", 4),
]


def category(kind: str, score: int) -> str:
    if kind == "nps":
        return "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"
    return "promoter" if score >= 4 else "passive" if score == 3 else "detractor"


def expected(senders: set[str] | None, days: int = 30) -> list[dict[str, Any]]:
    mine = [a for a in ANSWERS if a[4] < days and (senders is None or a[3] in senders)]
    out = []
    for survey in sorted({a[0] for a in mine}):
        rows = [a for a in mine if a[0] == survey]
        cats = [category(a[1], a[2]) for a in rows]
        p, d = cats.count("promoter"), cats.count("detractor")
        nps = round((p - d) * 100 / len(rows), 1) if rows[0][1] == "nps" else None
        mean = round(sum(a[2] for a in rows) / len(rows), 2) if rows[0][1] == "csat" else None
        out.append({"survey": survey, "kind": rows[0][1], "answers": len(rows), "promoters": p,
                    "passives": cats.count("passive"), "detractors": d, "nps": nps, "mean": mean})
    return out


async def write_answers(s: Stack) -> None:
    async with s.runtime.sessions() as db, db.begin():
        for i, (survey, kind, score, sender, ago) in enumerate(ANSWERS):
            day = TODAY - timedelta(days=ago)
            at = datetime(day.year, day.month, day.day, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai, that day
            db.add(FeedbackAnswer(token_id=f"t{i}", survey=survey, kind=kind, external_userid=f"wm{i:03d}",
                                  sender=sender, material_id=f"{survey}-link", score=score,
                                  category=category(kind, score), sent_at=at - timedelta(hours=2), answered_at=at,
                                  day=day, branch="", segments=[]))


async def report(s: Stack, grant: Grant, *, by: str | None = None, days: str | None = None) -> dict[str, Any]:
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    async with s.runtime.sessions() as db:
        return await run(db, grant, ask("feedback", today=TODAY, by=by, days=days), zone=ZONE, now=now)


async def test_answers_in_scope_by_survey_and_unit(db_url: str, tmp_path: Path) -> None:
    async with console_stack(db_url, tmp_path) as s:
        await write_answers(s)
        admin = Grant("zhouhai", Role.OPS_ADMIN)
        assert (await report(s, admin))["surveys"] == expected(None)
        assert (await report(s, admin, days="90"))["surveys"] == expected(None, 90)
        # A team lead sees their team's answers; an answer no manager sent is the whole bank's only.
        west = {"zhangwei", "lina", "wangqiang"}
        assert (await report(s, Grant("wangqiang", Role.TEAM_LEAD, WEST)))["surveys"] == expected(west)
        by_team = {r["unit"]: r["surveys"] for r in (await report(s, admin, by="team"))["rows"]}
        assert by_team[WEST] == expected(west)
        assert by_team[EAST] == expected({"gaofei", "xuming"})
        by_manager = {r["unit"]: r["surveys"] for r in (await report(s, admin, by="manager"))["rows"]}
        assert by_manager["gaofei"] == expected({"gaofei"})
        assert by_manager["chenjing"] == []  # in the directory, sent nothing
