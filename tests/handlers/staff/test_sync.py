"""``scrm staff sync`` and the nightly job against the sandbox's address book, over real HTTP."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from handlers.staff.cli import cmd_staff
from handlers.staff.models import StaffDepartment
from scrm.cli_support import UserError
from scrm.kernel.models import DueJob
from tests.handlers.staff.support import args, members
from tests.support.stack import stack

WEST, EAST = "杭州分行/城西支行", "杭州分行/城东支行"


async def test_sync_fills_names_paths_and_team_leads(db_url: str, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    async with stack(db_url, tmp_path) as s:
        assert await cmd_staff(args("staff", "sync"), s.settings, clock=s.clock) == 0
        assert "6 departments, 10 members" in capsys.readouterr().out
        rows = await members(s.runtime.sessions)
        assert rows["zhangwei"] == ("张伟", f"{WEST}/代发服务团队", "wangqiang", "active")
        assert rows["lina"][2] == "wangqiang"
        assert rows["chenjing"] == ("陈静", f"{WEST}/财富管理团队", "sunhui", "active")
        assert rows["gaofei"] == ("高飞", f"{EAST}/零售客户团队", "xuming", "active")
        # a lead's own lead is the head of the department above: team → sub-branch → branch
        assert rows["wangqiang"][2] == "mali" and rows["sunhui"][2] == "mali" and rows["xuming"][2] == "hemin"
        assert rows["mali"] == ("马丽", WEST, "zhouhai", "active")
        assert rows["zhouhai"] == ("周海", "杭州分行", None, "active")
        async with s.runtime.sessions() as session:
            depts = {d.id: d for d in (await session.scalars(select(StaffDepartment))).all()}
        assert set(depts) == {1, 2, 3, 10, 20, 21}
        assert (depts[2].name, depts[2].parent_id, depts[2].leaders) == ("代发服务团队", 10, ["wangqiang"])
        assert depts[1].parent_id is None
        assert len(s.calls("user/get")) == 10 and len(s.calls("department/list")) == 1

        # nothing changed in WeCom: nothing changes here
        assert await cmd_staff(args("staff", "sync"), s.settings, clock=s.clock) == 0
        assert "0 new, 0 updated, 0 resigned" in capsys.readouterr().out

        # the team lead leaves: gone from the address book, resigned here (the row stays); the
        # team's cards now escalate to the sub-branch head
        s.state.resign_member("wangqiang", s.clock.now().timestamp())
        assert await cmd_staff(args("staff", "sync"), s.settings, clock=s.clock) == 0
        assert "1 resigned" in capsys.readouterr().out
        rows = await members(s.runtime.sessions)
        assert rows["wangqiang"][3] == "resigned"
        assert rows["zhangwei"][2] == rows["lina"][2] == "mali"


async def test_a_name_wecom_hides_does_not_replace_a_known_one(sqlite_url: str, tmp_path: Path) -> None:
    """New self-built apps get the userid (or nothing) for a member's name."""
    async with stack(sqlite_url, tmp_path) as s:
        s.state.members["lina"].name = "lina"
        s.state.members["chenjing"].name = ""
        assert await cmd_staff(args("staff", "sync"), s.settings, clock=s.clock) == 0
        rows = await members(s.runtime.sessions)
        assert rows["lina"][0] == "李娜" and rows["chenjing"][0] == "陈静"  # as the stack put them in


async def test_sync_without_address_book_rights_is_one_line(sqlite_url: str, tmp_path: Path) -> None:
    async with stack(sqlite_url, tmp_path) as s:
        s.server.faults.error("department/list", 60011)
        with pytest.raises(UserError) as caught:
            await cmd_staff(args("staff", "sync"), s.settings, clock=s.clock)
        message = str(caught.value)
        assert "\n" not in message and "60011" in message and "scrm staff import" in message
        rows = await members(s.runtime.sessions)
        assert rows["zhangwei"][1] == "2"  # untouched (as the stack copied it)


async def test_nightly_job_syncs_the_directory(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path) as s:
        async with s.runtime.sessions() as session:
            job = await session.scalar(select(DueJob).where(DueJob.job_key == "staff.nightly"))
        assert job is not None and job.enabled and job.kind == "staff.sync"
        assert job.next_run_at is not None
        assert (await members(s.runtime.sessions))["zhangwei"][2] is None
        await s.run_until(job.next_run_at + timedelta(minutes=5))
        rows = await members(s.runtime.sessions)
        assert rows["zhangwei"] == ("张伟", f"{WEST}/代发服务团队", "wangqiang", "active")
        assert len(s.calls("department/list")) == 1


async def test_nightly_job_can_be_turned_off(sqlite_url: str, tmp_path: Path) -> None:
    async with stack(sqlite_url, tmp_path, sections={"staff": {"nightly_cron": ""}}) as s:
        async with s.runtime.sessions() as session:
            job = await session.scalar(select(DueJob).where(DueJob.job_key == "staff.nightly"))
        assert job is None
