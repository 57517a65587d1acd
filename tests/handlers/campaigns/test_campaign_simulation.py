"""A campaign over 20,000 customers on the fake clock, on SQLite and PostgreSQL.

One 1:1 send through the customers' managers, three variants of its material (2:1:1) and a 10 %
holdout; the audience is card holders in an active lifecycle stage whose manager sits in 杭州分行;
the contact policy refuses the opted-out and those another SOP already reached that day (the
per-day cap). The CRM reports activations inside, after and before the goal's window.

Every expected figure is worked out here from the seeding rules (:mod:`.sim_seed`) and the
documented assignment rule (SHA-256 of experiment and customer), never read from the code under
test. The slot runs as the service runs it (the SOP planner and executor in one transaction):
first a run that crashes part-way (its transaction rolls back), then the real run and a second
"instance" (its own engine and outbox) replaying the slot on the same database — nothing is
queued twice.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from scipy.stats import norm
from sqlalchemy import func, select

from handlers.campaigns.book import sync
from handlers.campaigns.campaign import campaign_of, load_campaign_files
from handlers.campaigns.campaign_book import sync_campaigns
from handlers.campaigns.funnel import campaign_report
from handlers.campaigns.models import CampaignTouch, ExperimentExposure
from handlers.campaigns.report import experiment_report
from handlers.sop.engine import Planned
from handlers.sop.executor import Executor
from handlers.sop.planner import DayPlanner, SlotPlanner
from scrm.adapters.db.engine import make_engine, make_sessionmaker
from scrm.kernel.clock import FakeClock
from scrm.kernel.config import OutboxSettings
from scrm.kernel.models import OutboxAction
from scrm.kernel.outbox import Outbox
from scrm.playbook import Playbook, load_playbook
from tests.handlers.campaigns import sim_seed as S
from tests.handlers.campaigns.sim_seed import CAMPAIGN, EXPERIMENT, MATERIALS, TEXTS, Expected
from tests.support.playbooks import write_shipped_playbook


class Crash(Exception):
    pass


async def crash_after(decisions: AsyncIterator[Any], n: int) -> AsyncIterator[Any]:
    async for i, d in _enumerate(decisions):
        if i == n:
            raise Crash
        yield d


async def _enumerate(it: AsyncIterator[Any]) -> AsyncIterator[tuple[int, Any]]:
    i = 0
    async for d in it:
        yield i, d
        i += 1


async def run_instance(db_url: str, pb: Playbook, *, crash_at: int | None = None) -> None:
    """One service instance running the 10:30 slot of 2026-12-15: its own engine and outbox."""
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    outbox = Outbox(engine, sessions, OutboxSettings(), FakeClock(S.SEND_AT), wecom=None)
    try:
        async with sessions() as session, session.begin():
            planner = SlotPlanner(pb, S.SEND_AT.date(), S.SEND_AT.timetz().replace(tzinfo=None), S.SEND_AT)
            executor = Executor(session, outbox, pb, agent_id=1000002, now=S.SEND_AT)
            decisions = planner.run(session)
            await executor.run(crash_after(decisions, crash_at) if crash_at is not None else decisions)
    finally:
        await engine.dispose()


@pytest.fixture
def playbook(tmp_path: Path) -> tuple[Path, Playbook]:
    sop, mat = write_shipped_playbook(tmp_path, materials=MATERIALS)
    (sop / "campaigns").mkdir(exist_ok=True)
    (sop / "campaigns" / "card-sim.yaml").write_text(CAMPAIGN, encoding="utf-8")
    return sop, load_playbook(sop, mat, today=S.SEND_AT)


async def test_campaign_funnel_variants_and_money_over_20000_customers(db_url: str,
                                                                      playbook: tuple[Path, Playbook]) -> None:
    sop, pb = playbook
    exp = Expected()
    assert len(exp.audience) > 8000 and exp.skipped and exp.held and exp.converted and exp.opened  # all exercised
    assert {a for a in exp.arm.values()} == {"a", "b", "c", "holdout"}
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    try:
        files = load_campaign_files(sop, pb)
        experiment = campaign_of(*files[0]).experiment
        assert experiment is not None
        async with sessions() as session, session.begin():
            await S.seed(session)
            await sync(session, [experiment], S.SEND_AT)
            await sync_campaigns(session, files, S.SEND_AT)

        # A preview (`scrm campaign plan`) by one instance, rolled back: who would get what.
        previewed: dict[str, str] = {}
        async with sessions() as session:
            async for d in DayPlanner(pb, S.SEND_AT.date(), only_source="campaign:card-sim").run(session):
                if isinstance(d, Planned):
                    previewed[d.target] = str(d.material).removeprefix("sim-")
                elif d.reason == "experiment: holdout":
                    previewed[d.target] = "holdout"
            await session.rollback()
        assert previewed == {S.ext(i): a for i, a in exp.arm.items()}

        # A crash part-way through the slot: nothing of it stays.
        with pytest.raises(Crash):
            await run_instance(db_url, pb, crash_at=500)
        async with sessions() as session:
            assert await session.scalar(select(func.count()).select_from(OutboxAction)) == 0
            assert await session.scalar(select(func.count()).select_from(CampaignTouch)) == 0
        # The real run, then a second instance on the same database (a replay of the slot).
        for _ in range(2):
            await run_instance(db_url, pb)

        async with sessions() as session:
            rows = (await session.execute(select(OutboxAction.idempotency_key, OutboxAction.payload))).all()
            exposures = dict((await session.execute(select(ExperimentExposure.customer, ExperimentExposure.variant)
                                                    .where(ExperimentExposure.experiment == EXPERIMENT))).all())
        # Exactly one queued send per reached customer, with their variant's text; none for the holdout.
        per_customer: dict[str, list[str]] = defaultdict(list)
        for _key, payload in rows:
            body = payload["body"]
            for target in body["external_userid"]:
                per_customer[target].append(body["text"]["content"])
        assert per_customer == {S.ext(i): [TEXTS[exp.arm[i]]] for i in exp.reached}
        assert exposures == {S.ext(i): a for i, a in exp.arm.items()}

        async with sessions() as session, session.begin():
            await S.open_links(session, exp)

        now = S.SEND_AT + timedelta(days=30)
        async with sessions() as session:
            report = await campaign_report(session, "card-sim", now, by="manager")
            ab = await experiment_report(session, EXPERIMENT, now)
    finally:
        await engine.dispose()

    everyone = set(exp.audience)
    assert report["funnel"] == exp.row(everyone)
    policy_skips = {"opt-out": sum(1 for i in exp.skipped if S.opted_out(i)),
                    "cap": sum(1 for i in exp.skipped if not S.opted_out(i))}
    assert report["skips"] == policy_skips
    variants = {r["variant"]: r for r in report["variants"]}
    for arm in ("a", "b", "c"):
        assert variants[arm] == {"variant": arm, **exp.row({i for i, a in exp.arm.items() if a == arm})}
    held = variants["holdout"]
    assert (held["targeted"], held["reached"], held["converted"]) == (
        len(exp.held), 0, len(exp.held & exp.converted_any))
    managers: dict[str, set[int]] = defaultdict(set)  # by branch and team: see test_campaign_cli
    for i in exp.audience:
        managers[S.manager_of(i)].add(i)
    assert report["rows"] == [{"manager": m, **exp.row(members)} for m, members in sorted(managers.items())]

    # The experiment report: the same counts, and lift, interval and p-value as scipy gives.
    arms = {r["variant"]: r for r in ab["arms"]}
    control_n = sum(1 for a in exp.arm.values() if a == "a")
    control_x = sum(1 for i, a in exp.arm.items() if a == "a" and i in exp.converted_any)
    z = norm.ppf(0.975)
    for arm in ("a", "b", "c", "holdout"):
        n = sum(1 for a in exp.arm.values() if a == arm)
        x = sum(1 for i, a in exp.arm.items() if a == arm and i in exp.converted_any)
        assert (arms[arm]["exposed"], arms[arm]["converted"]) == (n, x)
        p = x / n  # Wilson's score interval, written out from its definition
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        assert arms[arm]["ci"] == pytest.approx([centre - half, centre + half], abs=1e-9)
        base = control_x / control_n
        if arm != "a":
            assert arms[arm]["lift"] == pytest.approx((p - base) / base, rel=1e-12)
            pooled = (x + control_x) / (n + control_n)
            zz = (p - base) / math.sqrt(pooled * (1 - pooled) * (1 / n + 1 / control_n))
            assert arms[arm]["p_value"] == pytest.approx(2 * norm.sf(abs(zz)), rel=1e-9)
