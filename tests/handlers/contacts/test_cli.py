"""``scrm channels ...`` and ``scrm groups ...`` against the sandbox."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from sqlalchemy import select

from handlers.contacts.cli import cmd_channels
from handlers.contacts.models import ChannelWay
from handlers.groups.cli import cmd_groups
from scrm.cli import _register_extras, build_parser
from tests.support.playbooks import CHANNELS, write_playbook
from tests.support.stack import Stack, stack


def _args(*argv: str) -> argparse.Namespace:
    _register_extras()
    return build_parser().parse_args(list(argv))


async def _ways(s: Stack) -> dict[str, ChannelWay]:
    async with s.runtime.sessions() as session:
        return {w.key: w for w in (await session.scalars(select(ChannelWay))).all()}


async def test_channels_sync_creates_updates_and_retires(db_url: str, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    async with stack(db_url, tmp_path) as s:
        assert await cmd_channels(_args("channels", "sync"), s.settings, clock=s.clock) == 0
        out = capsys.readouterr().out
        assert "payroll-onboarding" in out and "created" in out
        ways = await _ways(s)
        assert set(ways) == {"payroll-onboarding", "lobby-chengxi", "wealth-salon", "cc-campaign-q4"}
        salon = s.state.contact_ways[ways["wealth-salon"].config_id or ""].body
        assert (salon["state"], salon["type"], salon["user"], salon["skip_verify"]) == (
            "wealth-salon", 1, ["chenjing"], False)
        lobby = s.state.contact_ways[ways["lobby-chengxi"].config_id or ""].body
        assert lobby["type"] == 2 and lobby["user"] == ["zhangwei", "lina"]
        assert s.state.contact_ways[ways["cc-campaign-q4"].config_id or ""].body["party"] == [2]
        assert ways["wealth-salon"].qr_code.startswith("https://")
        # every channel tag now exists in WeCom
        names = {f"{s.state.tag_groups[t.group_id].group_name}/{t.name}" for t in s.state.tags.values()}
        assert {"渠道/代发开卡", "渠道/网点大堂", "渠道/理财沙龙", "渠道/信用卡活动"} <= names
        # a second run changes nothing
        calls = len(s.state.received)
        assert await cmd_channels(_args("channels", "sync"), s.settings, clock=s.clock) == 0
        assert "created" not in capsys.readouterr().out
        assert [c.path for c in s.state.received[calls:]] == []  # tags resolved locally, ways unchanged
        # edit: a remark change updates; one manager → two managers recreates (type 1 → 2); inactive deletes
        changed = CHANNELS.replace("name: 代发开卡", "name: 代发开卡礼").replace(
            "managers: [chenjing]", "managers: [chenjing, wangqiang]").replace(
            "    department: 2\n", "    department: 2\n    active: false\n")
        write_playbook(tmp_path, channels=changed)
        assert await cmd_channels(_args("channels", "sync"), s.settings, clock=s.clock) == 0
        out = capsys.readouterr().out
        assert "updated" in out and "recreated" in out and "QR code changed" in out and "deleted" in out
        new = await _ways(s)
        assert new["payroll-onboarding"].config_id == ways["payroll-onboarding"].config_id
        assert s.state.contact_ways[new["payroll-onboarding"].config_id or ""].body["remark"] == "代发开卡礼"
        assert new["wealth-salon"].config_id != ways["wealth-salon"].config_id
        assert ways["wealth-salon"].config_id not in s.state.contact_ways
        assert new["cc-campaign-q4"].status == "deleted"
        assert ways["cc-campaign-q4"].config_id not in s.state.contact_ways
        # list: adds and churn per channel
        await s.driver.add_external_contact("zhangwei", name="甲", state="lobby-chengxi", welcome_code=False)
        out2 = await s.driver.add_external_contact("lina", name="乙", state="lobby-chengxi", welcome_code=False)
        await s.run()
        await s.driver.del_follow_user("lina", out2.fields["ExternalUserID"])
        await s.run()
        assert await cmd_channels(_args("channels", "list"), s.settings, clock=s.clock) == 0
        line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("lobby-chengxi"))
        assert line.split()[3:5] == ["2", "1"]  # added 2, lost 1


async def test_channels_sync_reports_wecom_errors(sqlite_url: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    channels = CHANNELS.replace("managers: [chenjing]", "managers: [nobody]")
    async with stack(sqlite_url, tmp_path, channels=channels) as s:
        assert await cmd_channels(_args("channels", "sync"), s.settings, clock=s.clock) == 1
        out = capsys.readouterr().out
        line = next(x for x in out.splitlines() if x.startswith("wealth-salon"))
        assert "error" in line and "60111" in line
        assert set(await _ways(s)) == {"payroll-onboarding", "lobby-chengxi", "cc-campaign-q4"}


async def test_groups_commands(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async with stack(db_url, tmp_path) as s:
        assert await cmd_groups(_args("groups", "pools", "sync"), s.settings, clock=s.clock) == 0
        out = capsys.readouterr().out
        assert "registry" in out and "3 group(s)" in out
        assert "payroll" in out and "elderly" in out and "payroll welcome" in out
        # the demo groups were registered and classified from WeCom (no events needed)
        assert await cmd_groups(_args("groups", "list"), s.settings, clock=s.clock) == 0
        listing = capsys.readouterr().out
        chat = s.ids.groups["银发兴趣群"]
        assert any(line.startswith(chat) and "elderly" in line for line in listing.splitlines())
        assert await cmd_groups(_args("groups", "show", chat), s.settings, clock=s.clock) == 0
        shown = capsys.readouterr().out
        assert '"type": "elderly"' in shown and '"in_pools": [\n    "elderly"\n  ]' in shown
        assert await cmd_groups(_args("groups", "pools", "list"), s.settings, clock=s.clock) == 0
        assert chat in capsys.readouterr().out
        templates = list(s.state.group_welcome_templates.values())
        assert {"text": {"content": "欢迎加入代发福利群！"}} in templates
        # the event group from the demo (养生快闪群) got its lifetime reminder armed
        from scrm.kernel.models import DueJob
        async with s.runtime.sessions() as session:
            keys = set((await session.scalars(select(DueJob.job_key))).all())
        assert f"group_lifetime:{s.ids.groups['养生快闪群']}" in keys
        # a second sync: welcome templates unchanged, pools updated in place
        assert await cmd_groups(_args("groups", "pools", "sync"), s.settings, clock=s.clock) == 0
        assert "unchanged" in capsys.readouterr().out
        assert len(s.state.group_welcome_templates) == 2
        assert len(s.state.join_ways) == 2


async def test_pools_sync_with_no_room_says_so(sqlite_url: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    groups = """\
    group_types:
      elderly:
        name: 银发兴趣群
        classify: {name: "银发"}
        member_cap: 3
        qr_pool: {size: 2}
    """
    async with stack(sqlite_url, tmp_path, groups=groups) as s:
        assert await cmd_groups(_args("groups", "pools", "sync"), s.settings, clock=s.clock) == 1
        line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("elderly"))
        assert "no 银发兴趣群 group has room (cap 3)" in line


async def test_group_welcome_link_goes_out_tracked(sqlite_url: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from handlers.radar.links import LinkMaker
    from tests.support.playbooks import MATERIALS

    groups = """\
    group_types:
      vip:
        name: 贵宾群
        classify: {owners: [chenjing]}
        member_cap: 50
        welcome: t-group-link
    """
    materials = MATERIALS + """\
- id: t-group-link
  type: link
  channels: [group]
  text: "欢迎加入{group.name}！"
  link: {title: 贵宾权益, url: "https://bank.example.com/vip"}
  approved: {by: 合规部-测试, at: 2025-01-01}
"""
    async with stack(sqlite_url, tmp_path, groups=groups, materials=materials) as s:
        assert await cmd_groups(_args("groups", "pools", "sync"), s.settings, clock=s.clock) == 0
        (template,) = s.state.group_welcome_templates.values()
        url = template["link"]["url"]
        claims = LinkMaker(s.settings).claims_of(url)
        assert claims is not None and url.startswith(s.settings.server.public_url.rstrip("/") + "/r/")
        # One template serves every joiner: no customer in the token, the type's only owner sends.
        assert (claims.material, claims.sender, claims.customer, claims.occurrence) == (
            "t-group-link", "chenjing", None, "group-welcome:vip")
        capsys.readouterr()
        assert await cmd_groups(_args("groups", "pools", "sync"), s.settings, clock=s.clock) == 0
        assert "vip welcome" in (out := capsys.readouterr().out) and "unchanged" in out
        assert len(s.state.group_welcome_templates) == 1
