"""``scrm campaign validate | plan`` on a campaign with a Moments channel."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from handlers.campaigns.campaign import load_campaign_files
from handlers.campaigns.campaign_book import sync_campaigns
from handlers.contacts.models import Customer, Follow, Member
from handlers.crm.models import CrmCustomer
from scrm.adapters.db.engine import make_engine, make_sessionmaker
from scrm.cli import main
from scrm.playbook import load_playbook
from tests.handlers.campaigns.test_moments_service import BOOK, CAMPAIGN, MATERIALS
from tests.handlers.sop.seeding import OLD, local
from tests.support.playbooks import write_shipped_playbook


def use(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, campaign: str) -> tuple[Path, Path]:
    sop, materials = write_shipped_playbook(tmp_path, materials=MATERIALS)
    (sop / "campaigns" / "card-post.yaml").write_text(campaign, encoding="utf-8")
    monkeypatch.setenv("SCRM_PLAYBOOK__SOP_DIR", str(sop))
    monkeypatch.setenv("SCRM_PLAYBOOK__MATERIALS_DIR", str(materials))
    return sop, materials


def test_validate_names_the_moments_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    use(monkeypatch, tmp_path, CAMPAIGN.replace("material: m-poster}", "material: t-mini}"))
    assert main(["campaign", "validate"]) == 2
    *problems, last = capsys.readouterr().err.splitlines()
    assert sorted(problems) == [
        "sop/campaigns/card-post.yaml:5: channels[0].material: material 't-mini' is a miniprogram; WeCom Moments "
        "take text with an image or a link (add_moment_task has no miniprogram)",
        "sop/campaigns/card-post.yaml:5: channels[0].material: material 't-mini' is not for moments sends "
        "(its channels: group, private)"]
    assert last == "scrm: 2 problem(s) in sop/campaigns/"


async def test_plan_shows_one_post_for_the_audience_managers(db_url: str, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    sop, materials = use(monkeypatch, tmp_path, CAMPAIGN)
    monkeypatch.setenv("SCRM_DATABASE__URL", db_url)
    at = local("2026-11-02", "09:00")
    engine = make_engine(db_url)
    try:
        async with make_sessionmaker(engine)() as s, s.begin():
            for manager, customers in BOOK.items():
                s.add(Member(userid=manager, name=manager))
                for ext in customers:
                    s.add(Customer(external_userid=ext, name=ext, crm_id=f"crm-{ext}", updated_at=OLD))
                    s.add(CrmCustomer(crm_id=f"crm-{ext}", attributes={"name": ext}, updated_at=OLD))
                    s.add(Follow(userid=manager, external_userid=ext, created_at=OLD, last_contact_at=OLD))
            await sync_campaigns(s, load_campaign_files(sop, load_playbook(sop, materials, today=at)), at)
    finally:
        await engine.dispose()
    assert await asyncio.to_thread(main, ["campaign", "plan", "card-post", "--customers"]) == 0
    out = capsys.readouterr().out.splitlines()
    n = sum(map(len, BOOK.values()))
    assert out[0] == "2026-11-03: 1 sends, 0 skipped"
    assert out[1] == (f"          1 × 10:40 post → moments m-poster (asks {len(BOOK)} managers to publish, "
                      f"for {n} customers)")
    assert sorted(out[2:]) == sorted(f"    10:40 post moments → {c} via {m}" for m, cs in BOOK.items() for c in cs)
