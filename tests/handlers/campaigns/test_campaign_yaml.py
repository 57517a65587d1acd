"""``sop/campaigns/*.yaml`` read into campaigns and their experiments; stored and read back."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select

from handlers.campaigns.campaign import ALL_CHANNELS, check_campaigns, load_campaign_files, load_campaigns
from handlers.campaigns.campaign_book import campaigns_in_force, sync_campaigns
from handlers.campaigns.models import Campaign as CampaignRow
from scrm.adapters.db.engine import make_engine, make_sessionmaker
from scrm.playbook import Playbook, load_playbook
from tests.handlers.campaigns.sim_seed import CAMPAIGN, MATERIALS
from tests.support.playbooks import write_shipped_playbook

NOW = datetime(2026, 12, 1, tzinfo=UTC)
PLAIN = """\
campaign: plain
window: {start: 2026-12-01, end: 2026-12-05}
audience: {segments: [payroll], condition: "crm.aum >= 50000"}
channels:
  - {id: call, kind: task, on: 2026-12-02, at: "09:30", material: t-task}
goal: {event: account.opened, within_days: 7}
"""


def write(tmp_path: Path, files: dict[str, str]) -> tuple[Path, Playbook]:
    sop, mat = write_shipped_playbook(tmp_path, materials=MATERIALS)
    for name, text in files.items():
        (sop / "campaigns" / f"{name}.yaml").write_text(text, encoding="utf-8")
    return sop, load_playbook(sop, mat, today=NOW)


def test_a_campaign_and_its_experiment(tmp_path: Path) -> None:
    sop, pb = write(tmp_path, {"card-sim": CAMPAIGN, "plain": PLAIN})
    sim, plain = load_campaigns(sop, pb)
    assert (sim.name, sim.source, sim.start, sim.end) == ("card-sim", "campaign:card-sim", date(2026, 12, 14),
                                                          date(2026, 12, 31))
    assert [(c.key, c.kind, c.day, c.at, c.material) for c in sim.channels] == [
        ("push", "private", date(2026, 12, 15), time(10, 30), "sim-a")]
    assert (sim.cost.per_send, sim.cost.per_conversion, sim.cost.currency) == (Decimal("0.05"), Decimal(40), "CNY")
    e = sim.experiment
    assert e is not None and (e.name, e.source, e.step, e.holdout, e.control) == (
        "card-sim-copy", "campaign:card-sim", ALL_CHANNELS, 10, "a")
    assert [(v.name, v.weight, v.material) for v in e.variants] == [("a", 2, None), ("b", 1, "sim-b"),
                                                                    ("c", 1, "sim-c")]
    assert plain.experiment is None  # no variants, no holdout: everyone gets the channels as written
    assert plain.audience.segments == ("payroll",) and plain.audience.condition is not None


def test_a_holdout_alone_compares_the_campaign_with_sending_nothing(tmp_path: Path) -> None:
    sop, pb = write(tmp_path, {"plain": PLAIN + "holdout: 20\n"})
    (c,) = load_campaigns(sop, pb)
    assert c.experiment is not None and [v.name for v in c.experiment.variants] == ["a"]
    assert c.experiment.name == "plain" and c.experiment.holdout == 20


def test_an_experiment_name_taken_in_sop_experiments_is_refused(tmp_path: Path) -> None:
    sop, pb = write(tmp_path, {"card-sim": CAMPAIGN})
    (sop / "experiments").mkdir()
    (sop / "experiments" / "x.yaml").write_text(
        "experiment: card-sim-copy\nstep: path:nope/x\nvariants: {a: {weight: 1}}\nholdout: 10\n"
        "planned_sample: 10\n", encoding="utf-8")
    assert check_campaigns(sop, pb) == []  # the experiment file is broken: its own validate says so
    (sop / "paths" / "p.yaml").write_text(
        'path: p\nname: 路径\nwhen: {}\nsteps:\n  - {id: x, on: "added_at + 1 day", at: "10:00", send: t-text, '
        "goal: {event: purchase.wealth, within_days: 14}}\n", encoding="utf-8")
    (sop / "experiments" / "x.yaml").write_text(
        "experiment: card-sim-copy\nstep: path:p/x\nvariants: {a: {weight: 1}}\nholdout: 10\n"
        "planned_sample: 10\n", encoding="utf-8")
    pb = load_playbook(sop, tmp_path / "materials", today=NOW)
    assert [str(i) for i in check_campaigns(sop, pb)] == [
        "sop/campaigns/card-sim.yaml:1: experiment: experiment 'card-sim-copy' is also declared in "
        "sop/experiments/; name it apart"]


def test_the_same_name_twice_and_an_experiment_name_shared(tmp_path: Path) -> None:
    sop, pb = write(tmp_path, {"a": CAMPAIGN, "b": CAMPAIGN})
    assert [str(i) for i in check_campaigns(sop, pb)] == [
        "sop/campaigns/b.yaml:1: campaign: 'card-sim' is declared in sop/campaigns/a.yaml:1 too"]


async def test_stored_read_back_and_retired_when_the_file_goes(db_url: str, tmp_path: Path) -> None:
    sop, pb = write(tmp_path, {"card-sim": CAMPAIGN, "plain": PLAIN})
    files = load_campaign_files(sop, pb)
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    try:
        async with sessions() as session, session.begin():
            assert await sync_campaigns(session, files, NOW) == ["card-sim", "plain"]
        async with sessions() as session:
            book = await campaigns_in_force(session)
        assert book.by_name == {c.name: c for c in load_campaigns(sop, pb)}  # the same definition
        assert book.slot_times() == {time(10, 30), time(9, 30)}
        assert [(c.name, ch.key) for c, ch in book.due(date(2026, 12, 15), time(10, 30))] == [("card-sim", "push")]
        assert book.due(date(2026, 12, 16), time(10, 30)) == []
        async with sessions() as session, session.begin():
            assert await sync_campaigns(session, [f for f in files if f[0].campaign == "plain"], NOW) == ["plain"]
        async with sessions() as session:  # kept for the report, no longer run
            assert set((await campaigns_in_force(session)).by_name) == {"plain"}
            rows = (await session.scalars(select(CampaignRow).order_by(CampaignRow.name))).all()
        assert [(r.name, r.active) for r in rows] == [("card-sim", False), ("plain", True)]
    finally:
        await engine.dispose()
