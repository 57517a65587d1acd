"""The nightly scoring on the running service over 65 days of the fake clock, both databases.

Three customers of one manager: one whose last contact was 50 days before the start (it turns
``silent``), one added 3 days before (``new``, then ``active``), one just contacted (``active``,
then ``activating`` once 33 days pass). Every expectation is worked out here from those dates and
the shipped sop/segments.yaml and sop/lifecycle.yaml numbers, in plain Python.
"""

from __future__ import annotations

import argparse
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from handlers.contacts.models import Follow
from handlers.crm import handlers as crm_handlers
from handlers.crm.models import Binding
from handlers.lifecycle import handlers as lifecycle_handlers
from handlers.lifecycle.cli import cmd_segments
from handlers.lifecycle.models import CustomerSegment
from handlers.sop import handlers as sop_handlers
from handlers.sop.models import SopSend
from handlers.timeline.api import Timeline
from tests.handlers.sop.seeding import local, seed
from tests.support.playbooks import write_shipped_playbook
from tests.support.stack import Stack, stack

START = local("2026-11-02", "10:00")
DAY0 = START.date()
DAYS = 65
RECONTACT = 20  # the manager is in touch with the new and active customers again this day (10:00)
SILENT, NEW, ACTIVE = "wmSilent", "wmNew", "wmActive"
WINBACK = """\
path: winback
name: 沉默唤醒
when: {stage_entered: silent}
steps:
  - {id: w1, on: "stage_entered + 1 day", at: "10:00", send: t-text}
  - {id: w2, on: "stage_entered + 8 days", at: "10:00", send: t-text}
"""
CRM = {
    SILENT: {"name": "沉默客户", "products": ["payroll"], "aum": 80_000, "age": 41, "txn_count_90d": 2,
             "last_txn_date": (DAY0 - timedelta(days=100)).isoformat(), "txn_amount_90d": 5_000},
    NEW: {"name": "新客户", "products": ["wealth", "credit_card"], "aum": 620_000, "age": 66, "car_owner": True,
          "txn_count_90d": 12, "last_txn_date": (DAY0 - timedelta(days=3)).isoformat(), "txn_amount_90d": 150_000},
    ACTIVE: {"name": "活跃客户", "products": "payroll|mortgage", "aum": "7000000", "age": 38,
             "customer_type": "merchant", "app_logins_30d": 30},
}
ROUTERS = [sop_handlers.router, crm_handlers.router, lifecycle_handlers.router]


def expected_scores(attrs: dict[str, object]) -> tuple[str, list[str], str, float, str]:
    """Tier, segments, grade, score and RFM by the shipped files' numbers, written out."""
    aum = float(str(attrs.get("aum", 0)))
    tier = ("private" if aum >= 6_000_000 else "wealth" if aum >= 500_000 else "affluent" if aum >= 50_000
            else "mass")
    raw = attrs.get("products")
    products = raw if isinstance(raw, list) else str(raw).split("|") if raw else []
    segments = [name for name, ok in (
        ("payroll", "payroll" in products), ("silver", int(str(attrs.get("age", 0))) >= 60),
        ("new", False), ("car_owner", attrs.get("car_owner") is True),
        ("merchant", attrs.get("customer_type") in ("merchant", "sme_owner")), ("cross_border", False)) if ok]
    score = (40 * min(aum / 1_000_000, 1) + 20 * min(len(products) / 5, 1)
             + 25 * min(float(str(attrs.get("txn_count_90d", 0))) / 30, 1)
             + 15 * min(float(str(attrs.get("app_logins_30d", 0))) / 20, 1))
    score = round(score, 2)  # the weights add up to 100
    grade = "A" if score >= 75 else "B" if score >= 50 else "C" if score >= 25 else "D"
    last = attrs.get("last_txn_date")
    ago = (DAY0 + timedelta(days=1) - date.fromisoformat(str(last))).days if last else None
    r = 1 if ago is None else 3 if ago <= 30 else 2 if ago <= 90 else 1
    n = float(str(attrs.get("txn_count_90d", 0))) if "txn_count_90d" in attrs else None
    f = 1 if n is None else 3 if n >= 10 else 2 if n >= 3 else 1
    m_raw = attrs.get("txn_amount_90d")
    m = 1 if m_raw is None else 3 if float(str(m_raw)) >= 100_000 else 2 if float(str(m_raw)) >= 10_000 else 1
    return tier, segments, grade, score, f"R{r}F{f}M{m}"


def expected_stage_changes() -> dict[str, list[tuple[date, str]]]:
    """(local day of the nightly run, stage) each time a customer's stage is set, by the shipped
    lifecycle.yaml: first match of new (added ≤ 14 days), lost, silent (≥ 60 days without
    contact), active (≤ 30, ≤ 33 once active), else activating; 7 days' minimum stay."""
    contacts = {SILENT: [DAY0 - timedelta(days=50)], NEW: [DAY0, DAY0 + timedelta(days=RECONTACT)],
                ACTIVE: [DAY0, DAY0 + timedelta(days=RECONTACT)]}
    added = {SILENT: DAY0 - timedelta(days=200), NEW: DAY0 - timedelta(days=3), ACTIVE: DAY0 - timedelta(days=200)}
    out: dict[str, list[tuple[date, str]]] = {}
    for ext in (SILENT, NEW, ACTIVE):
        stage, since, changes = "", DAY0, []
        for n in range(1, DAYS + 1):  # the nightly run of day n (03:30)
            today = DAY0 + timedelta(days=n)
            # A contact during a day is seen by the next night's run.
            last = max(c for c in contacts[ext] if c < today)
            quiet, age = (today - last).days, (today - added[ext]).days
            slack = 1.1
            if age <= (14 * slack if stage == "new" else 14):
                want = "new"
            elif quiet >= 180:
                want = "lost"
            elif quiet >= (60 * 0.9 if stage == "silent" else 60):
                want = "silent"
            elif quiet <= (30 * slack if stage == "active" else 30):
                want = "active"
            else:
                want = "activating"
            if want != stage and (not stage or (today - since).days >= 7):
                stage, since = want, today
                changes.append((today, want))
        out[ext] = changes
    return out


async def simulate(b: Stack) -> None:
    await seed(b, customers=[SILENT, NEW, ACTIVE], crm=CRM, added=START - timedelta(days=200))
    await b.run_until(START)  # the playbook's jobs are in place
    async with b.runtime.sessions() as s, s.begin():
        # Bound as the CRM's identity link would (the tag sync looks at bound relations).
        s.add_all([Binding(crm_id=f"crm-{ext}", external_userid=ext, source="explicit", bound_at=START) for ext in CRM])
        await s.execute(update(Follow).where(Follow.external_userid == SILENT)
                        .values(last_contact_at=START - timedelta(days=50)))
        await s.execute(update(Follow).where(Follow.external_userid == NEW)
                        .values(created_at=START - timedelta(days=3)))
    for n in range(1, DAYS + 1):
        await b.run_until(local((DAY0 + timedelta(days=n)).isoformat(), "11:00"))
        if n == RECONTACT:
            async with b.runtime.sessions() as s, s.begin():
                await s.execute(update(Follow).where(Follow.external_userid.in_([NEW, ACTIVE]))
                                .values(last_contact_at=local((DAY0 + timedelta(days=n)).isoformat(), "10:00")))


@pytest.fixture
def playbook(tmp_path: Path) -> tuple[Path, Path]:
    return write_shipped_playbook(tmp_path, paths={"winback": WINBACK})


async def test_sixty_five_nights_of_scores_stages_winback_card_timeline_and_tags(
        db_url: str, tmp_path: Path, playbook: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    async with stack(db_url, tmp_path, start=START, demo=False, routers=ROUTERS, playbook=playbook) as b:
        await simulate(b)
        changes = expected_stage_changes()
        async with b.runtime.sessions() as s:
            rows = {r.external_userid: r for r in (await s.scalars(select(CustomerSegment))).all()}
            entries = (await s.scalars(select(Timeline).where(Timeline.kind == "lifecycle.stage")
                                       .order_by(Timeline.id))).all()
            sends = (await s.scalars(select(SopSend).where(SopSend.source == "path:winback"))).all()
        # 三分 from the seeded attributes (the nightly of day 1 fixed RFM's "today"; AUM never moves).
        for ext, attrs in CRM.items():
            tier, segments, grade, score, _ = expected_scores(attrs)
            row = rows[ext]
            assert (row.tier, row.segments, row.grade, row.score) == (tier, segments, grade, score), ext
        # Stages: the last one reached, and a timeline entry per change after the first placement.
        for ext, seq in changes.items():
            assert rows[ext].stage == seq[-1][1], ext
            assert rows[ext].stage_since == seq[-1][0], ext
            got = [(e.at.astimezone(START.tzinfo).date(), e.detail["stage"]) for e in entries if e.subject_id == ext]
            assert got == seq[1:], ext
        assert [st for ext in (NEW, ACTIVE) for _, st in changes[ext] if st == "silent"] == []
        silent_day = next(d for d, st in changes[SILENT] if st == "silent")
        # The win-back series once: day +1 and day +8 after entering silent, nothing else.
        assert sorted((s.target, s.step, s.day) for s in sends) == [
            (SILENT, "w1", silent_day + timedelta(days=1)), (SILENT, "w2", silent_day + timedelta(days=8))]
        # One churn-risk card (silent is churn_risk; activating/active are not).
        cards = [c for c in b.cards("zhangwei") if "流失风险" in c.card.get("sub_title_text", "")]
        assert len(cards) == 1 and "沉默客户" in cards[0].card["sub_title_text"]
        # The stage reached WeCom as a tag through the CRM tag sync.
        follow = b.state.follow("zhangwei", SILENT)
        assert follow is not None
        names = {b.state.tags[t].name for t in follow.tag_ids if t in b.state.tags}
        assert {"沉默", "代发", "潜力客户"} <= names
        # The behaviour matrix: counts per (segment, stage) cell from the expectations above.
        capsys.readouterr()
        assert await cmd_segments(argparse.Namespace(segments_command="matrix"), b.settings, clock=b.clock) == 0
        out = capsys.readouterr().out
        cells: dict[tuple[str, str], int] = {}
        for ext, attrs in CRM.items():
            for seg in expected_scores(attrs)[1] or ["未分类"]:
                cells[(seg, changes[ext][-1][1])] = cells.get((seg, changes[ext][-1][1]), 0) + 1
        assert "代发 × 沉默: winback (1)" in out
        labels = {"payroll": "代发", "silver": "银发", "car_owner": "车主", "merchant": "商户"}
        stage_labels = {"active": "活跃", "activating": "培育", "silent": "沉默", "new": "新客"}
        for (seg, stage), n in cells.items():
            line = f"{labels.get(seg, seg)} × {stage_labels[stage]}: "
            assert any((x.strip().startswith(line) and x.strip().endswith(f"({n})  ! 无SOP")) or
                       x.strip().startswith(line + "winback") for x in out.splitlines()), (line, out)
        assert f"{len([c for c in cells if c[1] != 'silent'])} cell(s) with customers and no SOP" in out
