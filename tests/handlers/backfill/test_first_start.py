"""A first start against a corp that already has customers, groups, tags and contact ways
backfills all of it, once; ``scrm backfill`` says what it did and where it stands."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from handlers.backfill.cli import cmd_backfill
from handlers.backfill.first_start import backfill_once
from handlers.backfill.models import BackfillRun
from handlers.contacts.api import ChannelWay, Customer, Member
from handlers.groups.api import GroupChat, GroupMember
from handlers.tags.api import Tag
from scrm.cli_support import UserError
from tests.handlers.backfill.support import mirror_relations, seed, wecom_relations
from tests.handlers.staff.support import args
from tests.support.stack import stack


async def test_first_start_backfills_everything_once(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path) as s:
        seeded = seed(s, 250, tags=12, groups=4, group_size=15, ways=3)
        assert await backfill_once(s.runtime)
        # customers and relations with their tags: exactly what WeCom holds
        assert await mirror_relations(s) == wecom_relations(s)
        assert len(wecom_relations(s)) == 250 + 10  # the demo bank's 10 relations too
        async with s.runtime.sessions() as session:
            customers = {c.external_userid: c for c in (await session.scalars(select(Customer))).all()}
            members = {m.userid: m for m in (await session.scalars(select(Member))).all()}
            tags = {t.tag_id for t in (await session.scalars(select(Tag).where(Tag.deleted.is_(False)))).all()}
            chats = {c.chat_id: c for c in (await session.scalars(select(GroupChat))).all()}
            in_groups = (await session.execute(select(GroupMember.chat_id, GroupMember.member_id)
                                               .where(GroupMember.left_at.is_(None)))).all()
            ways = {w.key: w for w in (await session.scalars(select(ChannelWay))).all()}
            run = await session.get(BackfillRun, s.settings.wecom.corp_id)
        assert customers[seeded.customers[7]].unionid == seeded.unionids[seeded.customers[7]]
        assert customers[seeded.customers[7]].name == "客户7"
        # members: the staff sync (names, not userids)
        assert members["zhangwei"].name == "张伟" and members[seeded.members[1]].name == "经理ex1"
        # the whole tag library, the app's and the admin's
        assert tags == {t for t, tag in s.state.tags.items() if not tag.deleted}
        # every group with its members
        assert set(chats) == set(s.state.groups)
        assert set(in_groups) == {(c, m) for c, g in s.state.groups.items() for m in g.members}
        assert chats[seeded.groups[0]].owner == seeded.members[0]
        # contact ways adopted as channels under their state
        assert {f"ex-way-{i}" for i in range(3)} <= set(ways)
        assert ways["ex-way-1"].config_id == seeded.ways[1] and ways["ex-way-1"].spec_hash == ""
        assert run is not None and run.status == "done" and run.trigger == "start"

        # the next start does nothing: recorded done for the corp
        calls = len(s.state.received)
        assert await backfill_once(s.runtime)
        assert len(s.state.received) == calls


async def test_cli_runs_reports_and_refuses_a_second_run(sqlite_url: str, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    async with stack(sqlite_url, tmp_path) as s:
        seed(s, 30)
        assert await cmd_backfill(args("backfill", "--status"), s.settings, clock=s.clock) == 0
        assert "never backfilled" in capsys.readouterr().out
        assert await cmd_backfill(args("backfill"), s.settings, clock=s.clock) == 0
        out = capsys.readouterr().out
        assert "relations  done     40 item(s)" in out and "done" in out.splitlines()[-1]
        assert await cmd_backfill(args("backfill"), s.settings, clock=s.clock) == 0
        assert "run it again with --again" in capsys.readouterr().err
        assert await cmd_backfill(args("backfill", "--again"), s.settings, clock=s.clock) == 0
        assert await mirror_relations(s) == wecom_relations(s)
        assert await cmd_backfill(args("backfill", "--status"), s.settings, clock=s.clock) == 0
        assert "corp " in capsys.readouterr().out


async def test_a_wecom_error_is_one_line_and_the_rerun_goes_on(sqlite_url: str, tmp_path: Path) -> None:
    async with stack(sqlite_url, tmp_path) as s:
        seed(s, 30)
        s.server.faults.error("externalcontact/batch/get_by_user", 60011)
        with pytest.raises(UserError) as caught:
            await cmd_backfill(args("backfill"), s.settings, clock=s.clock)
        message = str(caught.value)
        assert "\n" not in message and "60011" in message and "scrm backfill" in message
        assert await cmd_backfill(args("backfill"), s.settings, clock=s.clock) == 0
        assert await mirror_relations(s) == wecom_relations(s)
