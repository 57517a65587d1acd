"""``scrm feedback report``: answers given over HTTP through minted, recorded survey links, then
NPS with promoters, passives and detractors per survey, by segment, branch, month and as a
whole (both databases). Expected figures are worked out here from the script with the textbook
NPS bands (9–10 promoter, 7–8 passive, 0–6 detractor; NPS = %promoters − %detractors)."""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from handlers.contacts.models import Member
from handlers.feedback.cli import cmd_feedback
from handlers.radar.api import record_send
from tests.handlers.feedback.support import (
    BRANCH_DEPT,
    SEGMENTS,
    SURVEY_MATERIAL,
    open_form,
    path_of,
    submit,
    survey_stack,
)
from tests.handlers.sop.seeding import local
from tests.support.stack import Stack

OTHER = ("lina", "宁波分行/海曙支行/财富团队")
BRANCHES = {"zhangwei": "/".join(BRANCH_DEPT.split("/")[:2]), "lina": "宁波分行/海曙支行"}
# (customer, sender, local day, NPS score), in time order; Alice and Bob answer twice (two rounds).
SCRIPT = [
    ("wmAlice", "zhangwei", "2026-10-05", 10), ("wmBob", "zhangwei", "2026-10-06", 6),
    ("wmCarol", "lina", "2026-10-09", 9), ("wmDave", "lina", "2026-10-20", 7),
    ("wmErin", "zhangwei", "2026-10-28", 0), ("wmAlice", "zhangwei", "2026-11-03", 8),
    ("wmBob", "lina", "2026-11-04", 9), ("wmCarol", "zhangwei", "2026-11-10", 3),
]
CSAT = ("wmDave", "zhangwei", "2026-11-11", 2)  # another survey: never mixed into the NPS rows


def band(score: int) -> str:
    return "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"


def expected(unit_of: Any) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, int]] = defaultdict(lambda: {"answers": 0, "promoter": 0, "passive": 0,
                                                           "detractor": 0, "sum": 0})
    for ext, sender, day, score in SCRIPT:
        for unit in unit_of(ext, sender, day):
            r = rows[unit]
            r["answers"] += 1
            r[band(score)] += 1
            r["sum"] += score
    return {u: {"answers": r["answers"], "promoters": r["promoter"], "passives": r["passive"],
                "detractors": r["detractor"], "nps": round((r["promoter"] - r["detractor"]) * 100 / r["answers"], 1),
                "mean": round(r["sum"] / r["answers"], 2)} for u, r in rows.items()}


async def answer(b: Stack, material: str, ext: str, sender: str, day: str, score: int, n: int) -> None:
    b.clock.set(local(day, "10:00"))
    link = b.links.make_link(material, sender, customer=ext, occurrence=f"round{n}@{ext}")
    async with b.runtime.sessions() as s, s.begin():
        assert await record_send(s, b.links, link, b.clock.now())
    form = "/f/" + path_of(link).removeprefix("/r/")
    _, _, csrf = await open_form(b, form)
    assert (await submit(b, form, csrf, str(score)))[0] == 303


async def report(b: Stack, capsys: pytest.CaptureFixture[str], **options: Any) -> dict[str, Any]:
    args = argparse.Namespace(**{"survey": None, "by": None, "since": "2026-10-01", "until": "2026-11-30",
                                 "days": None, "json": True, **options})
    assert await cmd_feedback(args, b.settings, clock=b.clock) == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def unit_rows(out: dict[str, Any], survey: str) -> dict[str, dict[str, Any]]:
    return {r["unit"] or "*": {k: r[k] for k in ("answers", "promoters", "passives", "detractors", "nps", "mean")}
            for r in out["rows"] if r["survey"] == survey}


async def test_nps_by_segment_branch_and_month(db_url: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    async with survey_stack(db_url, tmp_path) as b:
        async with b.runtime.sessions() as s, s.begin():
            s.add(Member(userid=OTHER[0], name="李娜", department=OTHER[1]))
        for n, (ext, sender, day, score) in enumerate(SCRIPT):
            await answer(b, SURVEY_MATERIAL, ext, sender, day, score, n)
        await answer(b, "survey-csat-service", *CSAT, n=99)
        b.clock.set(local("2026-12-01", "09:00"))

        whole = expected(lambda ext, sender, day: ["*"])
        segments = expected(lambda ext, sender, day: ["*", *(SEGMENTS[ext][1] or ["（无客群）"])])
        branches = expected(lambda ext, sender, day: ["*", BRANCHES[sender]])
        months = expected(lambda ext, sender, day: ["*", day[:7]])

        nps = "nps-onboarding"
        assert unit_rows(await report(b, capsys), nps) == whole
        assert unit_rows(await report(b, capsys, by="segment"), nps) == segments
        assert unit_rows(await report(b, capsys, by="branch"), nps) == branches
        assert unit_rows(await report(b, capsys, by="month"), nps) == months
        # The satisfaction survey has its own row: one answer of 2 on 1–5, a detractor.
        assert unit_rows(await report(b, capsys), "csat-service") == {
            "*": {"answers": 1, "promoters": 0, "passives": 0, "detractors": 1, "nps": -100.0, "mean": 2.0}}
        # A period is local days: November only.
        november = expected(lambda ext, sender, day: ["*"] if day >= "2026-11-01" else [])
        assert unit_rows(await report(b, capsys, since="2026-11-01", survey=nps), nps) == november

        # The table a person reads: the whole first, then one line per branch.
        args = argparse.Namespace(survey=nps, by="branch", since="2026-10-01", until="2026-11-30", days=None,
                                  json=False)
        assert await cmd_feedback(args, b.settings, clock=b.clock) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0] == "feedback 2026-10-01 .. 2026-11-30"
        assert lines[1].split() == ["survey", "branch", "answers", "promoters", "passives", "detractors", "nps", "mean"]
        first = whole["*"]
        assert lines[2].split() == [nps, "*", str(first["answers"]), str(first["promoters"]), str(first["passives"]),
                                    str(first["detractors"]), f"{first['nps']:.1f}", f"{first['mean']:.2f}"]
        assert [line.split()[1] for line in lines[3:]] == sorted(BRANCHES.values())


async def test_a_bad_period_is_one_line(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from scrm.cli_support import UserError

    async with survey_stack(db_url, tmp_path) as b:
        for options, message in (({"since": "2026-13-01"}, "--since must be a date YYYY-MM-DD, not '2026-13-01'"),
                                 ({"since": "2026-11-05", "until": "2026-11-01"},
                                  "--since 2026-11-05 is after --until 2026-11-01"),
                                 ({"days": 7, "since": "2026-11-01"}, "give --days or --since/--until, not both")):
            args = argparse.Namespace(**{"survey": None, "by": None, "since": None, "until": None, "days": None,
                                         "json": True, **options})
            with pytest.raises(UserError) as err:
                await cmd_feedback(args, b.settings, clock=b.clock)
            assert str(err.value) == message


async def test_the_command_line_says_what_is_wrong_in_one_line(db_url: str, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    from scrm.cli import main

    monkeypatch.setenv("SCRM_DATABASE__URL", db_url)
    assert await asyncio.to_thread(main, ["feedback", "report", "--since", "yesterday"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--since must be a date YYYY-MM-DD, not 'yesterday'" in err[0]
    assert await asyncio.to_thread(main, ["feedback", "report", "--days", "7"]) == 0
    assert capsys.readouterr().out.startswith("no answers from ")
