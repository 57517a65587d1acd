"""``scrm experiments report``: every figure equals what the fixture's own script says — exposed
and converted per arm counted here in plain Python (a conversion is a CRM event of the goal's
kind for a bound CRM id after the exposure and within the window; events before it, after the
window, of another kind or of an unbound id do not count), rates, Wilson intervals and p-values
computed here with scipy and the textbook z-test on those counts; no winner before the planned
sample (no peeking), a winner once it is reached; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from scipy.stats import binomtest, norm
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.campaigns.book import sync
from handlers.campaigns.experiments import Experiment, Variant
from handlers.campaigns.models import ExperimentExposure
from handlers.campaigns.report import experiment_report
from handlers.crm.api import Binding, CrmEvent
from scrm.adapters.db.engine import make_engine, make_sessionmaker
from scrm.cli import main
from tests.handlers.campaigns.support import experiment

T0 = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)  # the report is given its "now"; no wall clock involved
NOW = T0 + timedelta(days=40)
CONVERTING = {"in", "second_id"}


@dataclass(frozen=True)
class Scripted:
    customer: str
    arm: str
    outcome: str  # in | late | before | other_kind | unbound | second_id | none | recent
    exposed_at: datetime


def script(name: str, arms: dict[str, tuple[int, int]]) -> Iterator[Scripted]:
    """Per arm (exposed, converting): the converting ones first, then the rest cycling through
    every way of not converting; ten of the control's last customers exposed two days ago."""
    misses = ("late", "before", "other_kind", "unbound", "none")
    for arm, (exposed, converting) in arms.items():
        for i in range(exposed):
            at = T0 + timedelta(hours=i % 50)
            if i < converting:
                outcome = "second_id" if i % 7 == 0 else "in"
            elif arm == "a" and i >= exposed - 10:
                outcome, at = "recent", NOW - timedelta(days=2)
            else:
                outcome = misses[i % len(misses)]
            yield Scripted(f"{name}-{arm}-{i:04d}", arm, outcome, at)


async def seed(session: AsyncSession, e: Experiment, rows: list[Scripted]) -> None:
    await sync(session, [e], T0)  # the definition as the service stores it
    for r in rows:
        session.add(ExperimentExposure(experiment=e.name, customer=r.customer, variant=r.arm, at=r.exposed_at))
        crm = f"crm-{r.customer}"
        if r.outcome != "unbound":
            session.add(Binding(crm_id=crm, external_userid=r.customer, source="explicit", bound_at=T0))
        if r.outcome == "second_id":  # a customer with two CRM records: the event is on the second
            session.add(Binding(crm_id=crm + "-2", external_userid=r.customer, source="explicit", bound_at=T0))
            crm += "-2"
        kind, offset = {"in": ("purchase.wealth", timedelta(days=3)), "second_id": ("purchase.wealth", timedelta(1)),
                        "late": ("purchase.wealth", timedelta(days=15)),
                        "before": ("purchase.wealth", -timedelta(hours=1)),
                        "other_kind": ("interaction.visit", timedelta(days=1)),
                        "unbound": ("purchase.wealth", timedelta(days=1))}.get(r.outcome, ("", timedelta(0)))
        if kind:
            session.add(CrmEvent(event_id=f"ev-{r.customer}", crm_id=crm, kind=kind, at=r.exposed_at + offset,
                                 payload={}))


def expected(rows: list[Scripted]) -> tuple[Counter[str], Counter[str], Counter[str]]:
    exposed = Counter(r.arm for r in rows)
    converted = Counter(r.arm for r in rows if r.outcome in CONVERTING)
    still_open = Counter(r.arm for r in rows if r.outcome == "recent")
    return exposed, converted, still_open


def z_test_p(k1: int, n1: int, k2: int, n2: int) -> float:
    pooled = (k1 + k2) / (n1 + n2)
    z = (k1 / n1 - k2 / n2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return float(2 * norm.sf(abs(z)))


def check_figures(report: dict[str, Any], rows: list[Scripted], control: str) -> None:
    exposed, converted, still_open = expected(rows)
    by_arm = {r["variant"]: r for r in report["arms"]}
    assert set(by_arm) == set(exposed)
    for arm, r in by_arm.items():
        n, k = exposed[arm], converted[arm]
        assert (r["exposed"], r["converted"], r["window_open"]) == (n, k, still_open[arm]), arm
        assert r["rate"] == pytest.approx(k / n)
        ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert r["ci"] == pytest.approx([ci.low, ci.high])
        if arm == control:
            assert r["lift"] is None and r["p_value"] is None
        else:
            base = converted[control] / exposed[control]
            assert r["difference"] == pytest.approx(k / n - base)
            assert r["lift"] == pytest.approx((k / n - base) / base)
            assert r["p_value"] == pytest.approx(z_test_p(k, n, converted[control], exposed[control]), rel=1e-9)


AB = {"a": (300, 30), "b": (300, 75), "holdout": (60, 4)}


async def test_no_winner_before_the_planned_sample_then_a_winner(db_url: str) -> None:
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    try:
        rows = list(script("copy", AB))
        async with sessions() as s, s.begin():
            await seed(s, experiment("copy-test", holdout=15, planned=301), rows)
        async with sessions() as s:
            early = await experiment_report(s, "copy-test", NOW)
        check_figures(early, rows, "a")
        # b's lead is large (10 % → 25 %) but 300 < 301 per variant: no winner, and it says why.
        assert early["arms"][1]["p_value"] < 1e-5
        assert early["sample_reached"] is False and early["winner"] is None
        assert early["verdict"] == ("no winner yet: the planned sample is not reached (a 300/301, b 300/301); "
                                    "no peeking")
        # The same figures with the planned sample reached: b wins.
        async with sessions() as s, s.begin():
            await sync(s, [experiment("copy-test", holdout=15, planned=300)], NOW)
        async with sessions() as s:
            done = await experiment_report(s, "copy-test", NOW)
        check_figures(done, rows, "a")
        assert done["sample_reached"] is True and done["winner"] == "b"
        assert done["verdict"].startswith("b beats the control a (p = ")
    finally:
        await engine.dispose()


async def test_reached_but_no_difference_names_no_winner_and_one_variant_tests_the_holdout(db_url: str) -> None:
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    try:
        flat = list(script("flat", {"a": (220, 22), "b": (220, 25)}))
        solo = list(script("solo", {"a": (250, 50), "holdout": (250, 20)}))
        async with sessions() as s, s.begin():
            await seed(s, experiment("flat", planned=200), flat)
            await seed(s, experiment("solo", holdout=50, planned=250, variants=(Variant("a", 1),)), solo)
        async with sessions() as s:
            report = await experiment_report(s, "flat", NOW)
            alone = await experiment_report(s, "solo", NOW)
        check_figures(report, flat, "a")
        assert z_test_p(25, 220, 22, 220) > 0.05
        assert report["sample_reached"] is True and report["winner"] is None
        assert report["verdict"].startswith("no significant difference at alpha 0.05")
        # One variant against the holdout: the step (20 %) beats sending nothing (8 %).
        check_figures(alone, solo, "a")
        assert z_test_p(20, 250, 50, 250) < 0.05
        assert alone["winner"] == "a" and alone["verdict"].startswith("the control a beats holdout (p < ")
    finally:
        await engine.dispose()


def test_the_command_prints_the_report_and_refuses_an_unknown_name(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    rows = list(script("copy", AB))

    async def prepare() -> None:
        engine = make_engine(sqlite_url)
        try:
            async with make_sessionmaker(engine)() as s, s.begin():
                await seed(s, experiment("copy-test", holdout=15, planned=300), rows)
        finally:
            await engine.dispose()

    asyncio.run(prepare())
    monkeypatch.setenv("SCRM_DATABASE__URL", sqlite_url)
    assert main(["experiments", "report", "copy-test", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    exposed, converted, _ = expected(rows)
    assert [(r["variant"], r["exposed"], r["converted"]) for r in report["arms"]] == [
        (arm, exposed[arm], converted[arm]) for arm in ("a", "b", "holdout")]
    assert report["winner"] == "b"
    assert main(["experiment", "report", "copy-test"]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0].startswith("experiment copy-test on path:wealth-ab/offer: goal purchase.wealth within 14 days")
    assert text[-1].startswith("winner: b — b beats the control a")
    assert main(["experiments", "report", "nope"]) == 2
    assert capsys.readouterr().err.strip() == "scrm: no experiment 'nope'; known: copy-test"
