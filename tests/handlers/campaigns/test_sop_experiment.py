"""An A/B experiment on a path SOP step, run through the whole stack on the fake clock: every
customer receives exactly their variant's material (what the sandbox delivered once the manager
confirmed the mass sends), the holdout receives nothing and each of its skips is recorded with
the reason ``experiment: holdout``, and every customer's exposure is recorded in their arm.
The arms are worked out here from the documented rule (SHA-256 of experiment and customer),
not by the code under test."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import select

from handlers.campaigns.models import Experiment, ExperimentExposure
from tests.handlers.sop.seeding import ROUTERS, local, seed
from tests.support.playbooks import APPROVED, SOP_MATERIALS, write_shipped_playbook
from tests.support.stack import Stack, stack

PATH = """\
path: wealth-ab
name: 理财文案实验
when: {}
steps:
  - {id: offer, on: "added_at + 1 day", at: "10:00", send: ab-plain, goal: {event: purchase.wealth, within_days: 14}}
"""
MATERIALS = SOP_MATERIALS + f"""\
- id: ab-plain
  type: text
  channels: [private]
  text: 甲版：本月工资已到账，需要的话可以聊聊资金安排。
  {APPROVED}
- id: ab-warm
  type: text
  channels: [private]
  text: 乙版：辛苦一个月了，工资到账后有什么打算，随时找我。
  {APPROVED}
"""
TEXTS = {"a": "甲版：本月工资已到账，需要的话可以聊聊资金安排。",
         "b": "乙版：辛苦一个月了，工资到账后有什么打算，随时找我。"}
EXPERIMENT = """\
experiment: wealth-copy
step: path:wealth-ab/offer
variants:
  a: {weight: 50}
  b: {material: ab-warm, weight: 50}
holdout: 25
planned_sample: 1000
"""
CUSTOMERS = [f"wmAB{i:03d}" for i in range(40)]


def arm_of(customer: str) -> str:
    """The documented rule: u = the first 64 bits of SHA-256("wealth-copy␟customer") / 2⁶⁴; the
    first 25 % is the holdout, the rest splits 50:50 in file order."""
    u = int.from_bytes(hashlib.sha256(f"wealth-copy\x1f{customer}".encode()).digest()[:8], "big") / 2**64
    if u < 0.25:
        return "holdout"
    return "a" if (u - 0.25) / 0.75 < 0.5 else "b"


def delivered(b: Stack, customer: str) -> list[str]:
    return [str(d.content["text"].get("content", "")) for d in b.state.delivered_messages(kind="mass", to=customer)]


async def test_each_customer_gets_their_variant_and_the_holdout_nothing(db_url: str, tmp_path: Path) -> None:
    sop, mat = write_shipped_playbook(tmp_path, paths={"wealth-ab": PATH}, materials=MATERIALS)
    (sop / "experiments").mkdir(exist_ok=True)
    (sop / "experiments" / "wealth-copy.yaml").write_text(EXPERIMENT, encoding="utf-8")
    arms = {c: arm_of(c) for c in CUSTOMERS}
    assert set(arms.values()) == {"a", "b", "holdout"}  # the fixture exercises every arm
    async with stack(db_url, tmp_path, start=local("2026-11-02", "09:00"), demo=False, routers=ROUTERS,
                     playbook=(sop, mat)) as b:
        async with b.runtime.sessions() as s:  # stored at start, as every instance reads it
            assert [e.name for e in (await s.scalars(select(Experiment))).all()] == ["wealth-copy"]
        await seed(b, customers=CUSTOMERS, added=local("2026-11-01", "12:00"))
        await b.run_until(local("2026-11-02", "10:30"))
        for msgid in list(b.state.msg_templates):  # the manager presses 发送 on every mass send
            b.driver.confirm_msg_task(msgid, "zhangwei")
        for customer, arm in arms.items():
            assert delivered(b, customer) == ([] if arm == "holdout" else [TEXTS[arm]]), (customer, arm)
        skips = {o.occurrence_key.split(":")[0]: o.reason for o in await b.occurrences("skipped")
                 if o.job_key == "sop:path:wealth-ab:offer"}
        assert skips == {c: "experiment: holdout" for c, arm in arms.items() if arm == "holdout"}
        async with b.runtime.sessions() as s:
            exposures = {e.customer: e.variant for e in (await s.scalars(select(ExperimentExposure))).all()}
        assert exposures == arms
        # A second run of the same slot (a replay, another instance) sends and records nothing new.
        before = len(b.state.msg_templates)
        await b.run_until(local("2026-11-02", "12:00"))
        assert len(b.state.msg_templates) == before
        async with b.runtime.sessions() as s:
            assert len((await s.scalars(select(ExperimentExposure))).all()) == len(CUSTOMERS)
