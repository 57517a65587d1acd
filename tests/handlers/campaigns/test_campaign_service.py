"""A campaign through the whole service on the fake clock: stored at start, its channel times
become the SOP engine's slot jobs, the 1:1 send reaches each customer in their variant's wording
(as delivered by the WeCom sandbox once the manager confirms), the holdout receives nothing, the
manager gets a task card per reached customer two days later, and the report counts it all.
Arms are worked out here from the documented rule, not by the code under test."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import select

from handlers.campaigns.api import campaign_report
from handlers.campaigns.models import Campaign, CampaignTouch, Experiment
from scrm.kernel.models import DueJob
from tests.handlers.sop.seeding import ROUTERS, local, seed
from tests.support.playbooks import APPROVED, SOP_MATERIALS, write_shipped_playbook
from tests.support.stack import Stack, stack

TEXTS = {"a": "甲版：年末刷卡季，本月消费满额有礼。", "b": "乙版：绑定微信支付，首笔消费立减。"}
MATERIALS = SOP_MATERIALS + f"""\
- id: svc-a
  type: text
  channels: [private]
  text: {TEXTS["a"]}
  {APPROVED}
- id: svc-b
  type: text
  channels: [private]
  text: {TEXTS["b"]}
  {APPROVED}
- id: svc-call
  type: text
  channels: [manager]
  text: 请回访{{customer.name}}，介绍年末刷卡季。
  {APPROVED}
"""
CAMPAIGN = """\
campaign: svc-drive
name: 服务内测活动
window: {start: 2026-11-02, end: 2026-11-30}
channels:
  - {id: push, kind: private, on: 2026-11-03, at: "10:40", material: svc-a}
  - {id: call, kind: task, on: 2026-11-05, at: "09:50", material: svc-call}
variants:
  a: {weight: 1}
  b: {weight: 1, material: svc-b}
holdout: 25
experiment: svc-copy
planned_sample: 100
goal: {event: card.activated, within_days: 14}
cost: {per_send: 0.1, per_conversion: 20}
"""
CUSTOMERS = [f"wmSV{i:03d}" for i in range(24)]


def arm_of(customer: str) -> str:
    u = int.from_bytes(hashlib.sha256(f"svc-copy\x1f{customer}".encode()).digest()[:8], "big") / 2**64
    if u < 0.25:
        return "holdout"
    return "a" if (u - 0.25) / 0.75 < 0.5 else "b"


def delivered(b: Stack, customer: str) -> list[str]:
    return [str(d.content["text"].get("content", "")) for d in b.state.delivered_messages(kind="mass", to=customer)]


async def test_a_campaign_runs_in_the_service_under_the_sop_engine(db_url: str, tmp_path: Path) -> None:
    sop, mat = write_shipped_playbook(tmp_path, materials=MATERIALS)
    (sop / "campaigns").mkdir(exist_ok=True)
    (sop / "campaigns" / "svc-drive.yaml").write_text(CAMPAIGN, encoding="utf-8")
    arms = {c: arm_of(c) for c in CUSTOMERS}
    assert set(arms.values()) == {"a", "b", "holdout"}
    reached = [c for c, a in arms.items() if a != "holdout"]
    async with stack(db_url, tmp_path, start=local("2026-11-02", "09:00"), demo=False, routers=ROUTERS,
                     playbook=(sop, mat)) as b:
        async with b.runtime.sessions() as s:  # stored at start; its times are slot jobs
            assert [c.name for c in (await s.scalars(select(Campaign))).all()] == ["svc-drive"]
            assert [e.name for e in (await s.scalars(select(Experiment))).all()] == ["svc-copy"]
            jobs = set(await s.scalars(select(DueJob.job_key).where(DueJob.enabled.is_(True))))
        assert {"sop.due:10:40", "sop.due:09:50"} <= jobs
        await seed(b, customers=CUSTOMERS)
        await b.run_until(local("2026-11-03", "11:00"))
        for msgid in list(b.state.msg_templates):  # the manager presses 发送 on the mass send
            b.driver.confirm_msg_task(msgid, "zhangwei")
        for customer, arm in arms.items():
            assert delivered(b, customer) == ([] if arm == "holdout" else [TEXTS[arm]]), (customer, arm)
        await b.run_until(local("2026-11-05", "10:30"))
        cards = [str(card.card) for card in b.cards("zhangwei")]
        assert {c: sum(f"请回访{c}，" in card for card in cards) for c in CUSTOMERS} == {
            c: int(a != "holdout") for c, a in arms.items()}
        async with b.runtime.sessions() as s:
            touches = {(t.channel, t.customer): t.outcome for t in (await s.scalars(select(CampaignTouch))).all()}
            report = await campaign_report(s, "svc-drive", local("2026-11-06", "09:00"), by="manager")
    assert touches == {(ch, c): ("holdout" if a == "holdout" else "sent") for c, a in arms.items()
                       for ch in ("push", "call")}
    n = len(reached)
    assert report["funnel"] == {"targeted": len(CUSTOMERS), "reached": n, "opened": 0, "converted": 0,
                                "referred": 0, "sends": 2 * n, "cost": f"{0.1 * 2 * n:.2f}",
                                "cost_per_conversion": None}
    assert [r["manager"] for r in report["rows"]] == ["zhangwei"]


GROUP_CAMPAIGN = """\
campaign: salon
name: 代发企业开放日
window: {start: 2026-11-02, end: 2026-11-10}
channels:
  - {id: invite, kind: group, group_types: [payroll], on: 2026-11-03, at: "10:40", material: t-text}
goal: {event: account.opened, within_days: 7}
cost: {per_send: 2}
"""


async def test_a_group_channel_posts_in_each_group_and_counts_its_customers(db_url: str, tmp_path: Path) -> None:
    from sqlalchemy import insert

    from handlers.groups.models import GroupMember

    sop, mat = write_shipped_playbook(tmp_path, materials=MATERIALS)
    (sop / "campaigns" / "salon.yaml").write_text(GROUP_CAMPAIGN, encoding="utf-8")
    created = local("2026-10-01", "09:00")
    members = {"wrP1": ["wmG1", "wmG2", "wmG3"], "wrP2": ["wmG3", "wmG4"], "wrV1": ["wmG5"]}
    async with stack(db_url, tmp_path, start=local("2026-11-02", "09:00"), demo=False, routers=ROUTERS,
                     playbook=(sop, mat)) as b:
        await seed(b, customers=["wmG1", "wmG2", "wmG3", "wmG4", "wmG5"],
                   groups=[("wrP1", "payroll", created), ("wrP2", "payroll", created), ("wrV1", "vip", created)])
        async with b.runtime.sessions() as s, s.begin():
            await s.execute(insert(GroupMember), [{"chat_id": chat, "member_id": m, "type": 2, "joined_at": created}
                                                  for chat, ms in members.items() for m in ms])
            await s.execute(insert(GroupMember), [{"chat_id": "wrP2", "member_id": "wmGone", "type": 2,
                                                   "joined_at": created, "left_at": created}])
        await b.run_until(local("2026-11-03", "11:00"))
        posts = [r for r in await b.outbox_rows("externalcontact/add_msg_template")
                 if r.idempotency_key.startswith("sop:campaign:salon:")]
        async with b.runtime.sessions() as s:
            touches = sorted((t.customer, t.outcome) for t in (await s.scalars(select(CampaignTouch))).all())
            report = await campaign_report(s, "salon", local("2026-11-04", "09:00"))
    assert sorted(r.payload["body"]["chat_id_list"][0] for r in posts) == ["wrP1", "wrP2"]  # not the vip group
    assert touches == [(c, "sent") for c in ("wmG1", "wmG2", "wmG3", "wmG4")]  # once each; not who left
    f = report["funnel"]
    # per_send is charged per customer a channel reached: wmG3, in both groups, counts once.
    assert (f["targeted"], f["reached"], f["sends"], f["cost"]) == (4, 4, 4, "8.00")
