"""Quiet hours cover managers too: a churn notice, a radar alert or a greet-by-hand notice raised
inside them reaches the manager when they end (exactly once); raised before them, it goes at once.

The policy is edited to quiet hours 22:30-08:00 and reloaded, as an operator would, so that
22:29 and 22:31 (Asia/Shanghai) fall on either side of their start.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from handlers.radar.events import RadarDigest
from scrm.kernel.clock import FakeClock
from scrm.kernel.service import Runtime
from tests.handlers.contacts.test_contacts import EXPIRED_BOTH
from tests.handlers.radar.data import MATERIALS, ROUTERS, radar
from tests.support.stack import stack

TZ = ZoneInfo("Asia/Shanghai")
QUIET = "22:30-08:00"


def _local(hour: int, minute: int, second: int = 0, *, day: int = 2) -> datetime:
    return datetime(2026, 11, day, hour, minute, second, tzinfo=TZ)


async def _quiet_from_2230(runtime: Runtime) -> None:
    policy = runtime.settings.playbook.sop_dir / "policy.yaml"
    text = policy.read_text()
    assert 'quiet_hours: "21:00-08:30"' in text
    policy.write_text(text.replace('quiet_hours: "21:00-08:30"', f'quiet_hours: "{QUIET}"'))
    await runtime.reload_playbook()
    playbook = runtime.playbook.current
    assert playbook is not None and str(playbook.policy.quiet_hours) == QUIET


def _at(clock: FakeClock, when: datetime) -> None:
    assert when >= clock.now()
    clock.set(when)


async def test_churn_notice_waits_for_the_end_of_quiet_hours(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path) as s:
        await _quiet_from_2230(s.runtime)
        early = await s.driver.add_external_contact("zhangwei", name="赵早早", state="lobby-chengxi")
        late = await s.driver.add_external_contact("zhangwei", name="钱晚晚", state="lobby-chengxi")
        await s.run()

        def churn(name: str) -> list[str]:
            return [m for m in s.app_messages("zhangwei") if "客户流失" in m and name in m]

        _at(s.clock, _local(22, 29))  # a minute before quiet hours: at once
        await s.driver.del_follow_user("zhangwei", early.fields["ExternalUserID"])
        await s.run()
        assert len(churn("赵早早")) == 1

        _at(s.clock, _local(22, 31))  # inside quiet hours: queued, not sent
        await s.driver.del_follow_user("zhangwei", late.fields["ExternalUserID"])
        await s.run()
        assert churn("钱晚晚") == []
        _at(s.clock, _local(7, 59, 59, day=3))
        await s.run()
        assert churn("钱晚晚") == []

        _at(s.clock, _local(8, 0, day=3))  # quiet hours are over: sent, once
        await s.run()
        assert len(churn("钱晚晚")) == 1
        s.clock.advance(hours=5)
        await s.run()
        assert len(churn("钱晚晚")) == 1 and len(churn("赵早早")) == 1


async def test_radar_alert_and_digest_wait_for_the_end_of_quiet_hours(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path, materials=MATERIALS, routers=ROUTERS, customers=True, sections=radar()) as s:
        await _quiet_from_2230(s.runtime)
        early, late = s.ids.customers["王芳"], s.ids.customers["黄磊"]

        def alerts(name: str) -> list[str]:
            return [m for m in s.notices("zhangwei") if m.startswith(f"客户 {name}")]

        def digests() -> list[str]:
            return [m for m in s.notices("zhangwei") if "汇总" in m]

        _at(s.clock, _local(22, 29))  # a minute before quiet hours: at once
        assert (await s.open(s.links.make_link("m-fund", "zhangwei", customer=early)))[0] == 302
        await s.run()
        assert len(alerts("王芳")) == 1

        _at(s.clock, _local(22, 31))  # inside quiet hours: queued, not sent
        link = s.links.make_link("m-fund", "zhangwei", customer=late)
        assert (await s.open(link))[0] == 302
        await s.run()
        assert alerts("黄磊") == []
        # A second open within the alert window goes to the digest, which also keeps quiet.
        _at(s.clock, _local(22, 40))
        assert (await s.open(link))[0] == 302
        await s.run()
        _at(s.clock, _local(22, 45))
        await s.runtime.inbox.put_internal(RadarDigest(at=s.clock.now()), "d1")
        await s.run()
        _at(s.clock, _local(7, 59, 59, day=3))
        await s.run()
        assert alerts("黄磊") == [] and digests() == []

        _at(s.clock, _local(8, 0, day=3))  # quiet hours are over: both sent, once
        await s.run()
        s.clock.advance(hours=5)
        await s.run()
        [alert] = alerts("黄磊")
        assert "22:31" in alert  # read the next morning, the alert says when the customer looked
        [digest] = digests()
        assert "黄磊" in digest and "1 次" in digest
        [first] = alerts("王芳")
        assert "22:29" not in first  # an alert sent at once needs no time


async def test_greet_by_hand_notice_waits_for_the_end_of_quiet_hours(sqlite_url: str, tmp_path: Path) -> None:
    # Every welcome material has expired: no welcome can go out, the manager is asked to greet.
    async with stack(sqlite_url, tmp_path, materials=EXPIRED_BOTH) as s:
        await _quiet_from_2230(s.runtime)

        def greet() -> list[str]:
            return [m for m in s.app_messages("zhangwei") if "请手动问候" in m]

        _at(s.clock, _local(22, 31))
        await s.driver.add_external_contact("zhangwei", name="孙夜猫", state="payroll-onboarding")
        await s.run()
        assert greet() == []
        _at(s.clock, _local(8, 0, day=3))
        await s.run()
        (notice,) = greet()
        assert "孙夜猫" in notice
