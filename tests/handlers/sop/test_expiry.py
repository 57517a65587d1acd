"""A material's expiry skips the steps that use it and never stops the service.

The day after ``valid_until``, a restart starts as on any other day (the playbook is checked
against the injected clock, not the machine's date), the step that sends the material is
skipped with its reason while the other steps go on, the ops contacts hear about it once a day
(first that it expires, then that it is being skipped), and ``/metrics`` counts it.
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import select

from scrm.kernel.models import Occurrence
from scrm.main import build_runtime
from tests.handlers.sop.seeding import ROUTERS, local, seed
from tests.support.playbooks import APPROVED, SOP_MATERIALS, write_shipped_playbook
from tests.support.stack import stack

START = local("2026-11-02", "09:30")
CHAT = "wrExpiryChat"
SOON = f"""\
- id: t-soon
  type: text
  channels: [group]
  text: 双十一存款加息，今天最后一天。
  {APPROVED}
  valid_until: 2026-11-03
"""
CALENDAR = """\
calendar: expiry
name: 到期测试
group_type: regional
steps:
  - {id: promo-0, day: 0, at: "10:00", send: t-soon}
  - {id: promo-2, day: 2, at: "10:00", send: t-soon}
  - {id: notice-2, day: 2, at: "10:30", send: t-text}
"""
POLICY = {"sop/policy.yaml": {"on_holiday: next_workday": "on_holiday: send\nops_contacts: [lead1]"}}


def _gauge(text: str, state: str) -> float:
    match = re.search(rf'^scrm_playbook_materials_in_use\{{state="{state}"\}} (\S+)$', text, re.M)
    assert match is not None, text
    return float(match[1])


async def test_expired_material_skips_its_steps_and_a_restart_still_starts(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path, start=START, demo=False, routers=ROUTERS,
                     playbook=write_shipped_playbook(tmp_path, calendars={"expiry": CALENDAR},
                                                     materials=SOP_MATERIALS + SOON, edits=POLICY)) as b:
        await seed(b, groups=[(CHAT, "regional", local("2026-11-02", "08:00"))])
        await b.run_until(local("2026-11-02", "10:05"))
        sent = [c.body["text"]["content"] for c in b.calls("externalcontact/add_msg_template")]
        assert sent == ["双十一存款加息，今天最后一天。"]

        await b.run_until(local("2026-11-03", "09:05"))
        # The morning after valid_until: a routine restart loads the same files and starts.
        b.clock.set(local("2026-11-04", "08:45"))
        restarted = build_runtime(b.settings, clock=b.clock, wecom=b.wecom)
        try:
            (blocked,) = [f for f in restarted.playbook.findings() if f.blocked]
            assert blocked.material == "t-soon" and "expired on 2026-11-03" in blocked.problem
            assert blocked.uses == ("sop/calendars/expiry.yaml:5 steps[0].send",
                                    "sop/calendars/expiry.yaml:6 steps[1].send")
        finally:
            await restarted.engine.dispose()

        await b.run_until(local("2026-11-04", "10:35"))
        sent = [c.body["text"]["content"] for c in b.calls("externalcontact/add_msg_template")]
        assert sent == ["双十一存款加息，今天最后一天。", "各位好，本周营业时间不变。"]  # promo-2 skipped
        async with b.runtime.sessions() as s:
            skipped = list((await s.scalars(select(Occurrence).where(Occurrence.outcome == "skipped"))).all())
        assert [(o.job_key, o.occurrence_key, o.reason) for o in skipped if o.job_key.startswith("sop:")] == [
            ("sop:calendar:expiry:promo-2", f"{CHAT}:2026-11-04",
             "material 't-soon' expired on 2026-11-03 (valid_until)")]

        # Told once a day: on the 3rd that it expires that day, on the 4th that it is skipped.
        notices = b.texts_to("lead1")
        assert len(notices) == 2, notices
        assert "2026-11-03" in notices[0] and "30 天内到期 1 个素材" in notices[0] and "(in 0 days)" in notices[0]
        assert "2026-11-04" in notices[1] and "已停发 1 个素材" in notices[1] and "expired on 2026-11-03" in notices[1]
        assert "t-soon" in notices[1] and "2 处使用" in notices[1]

        metrics = await (await b.client.get("/metrics")).text()
        assert _gauge(metrics, "blocked") == 1 and _gauge(metrics, "expiring") == 0
