"""``scrm staff import|list|show``: the HR file into the database, what the directory prints, and
operator mistakes as one line with exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from handlers.contacts.api import Member
from handlers.staff.cli import cmd_staff
from handlers.staff.models import StaffProfile
from scrm.adapters.db.engine import make_engine, make_sessionmaker
from scrm.cli import main
from scrm.cli_support import UserError
from scrm.kernel.clock import FakeClock
from tests.conftest import make_settings
from tests.handlers.staff.support import args, members
from tests.support.stack import stack

HR = ("userid,name,department,team_lead,status\n"
      "wangqiang,王强,杭州分行/城西支行/代发服务团队,,active\n"
      "zhangwei,张伟,杭州分行/城西支行/代发服务团队,wangqiang,active\n"
      "lina,李娜,杭州分行/城西支行/代发服务团队,wangqiang,离职\n")


async def test_import_an_hr_file_then_list_and_show(db_url: str, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    settings, clock = make_settings(db_url), FakeClock()
    path = tmp_path / "hr.csv"
    path.write_text(HR, encoding="utf-8-sig")
    assert await cmd_staff(args("staff", "import", str(path)), settings, clock=clock) == 0
    assert "3 members — 3 new, 0 updated, 0 resigned" in capsys.readouterr().out
    engine = make_engine(db_url)
    try:
        sessions = make_sessionmaker(engine)
        rows = await members(sessions)
        assert rows == {"wangqiang": ("王强", "杭州分行/城西支行/代发服务团队", None, "active"),
                        "zhangwei": ("张伟", "杭州分行/城西支行/代发服务团队", "wangqiang", "active"),
                        "lina": ("李娜", "杭州分行/城西支行/代发服务团队", "wangqiang", "resigned")}
        # importing again changes nothing; a corrected file changes what it says
        assert await cmd_staff(args("staff", "import", str(path)), settings, clock=clock) == 0
        assert "0 new, 0 updated, 0 resigned" in capsys.readouterr().out
        path.write_text(HR.replace("wangqiang,active", ",active"), encoding="utf-8")
        assert await cmd_staff(args("staff", "import", str(path)), settings, clock=clock) == 0
        assert "0 new, 1 updated, 0 resigned" in capsys.readouterr().out
        assert (await members(sessions))["zhangwei"][2] is None  # no override, no WeCom leader
    finally:
        await engine.dispose()

    assert await cmd_staff(args("staff", "list", "--status", "resigned"), settings, clock=clock) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[1].split()[:3] == ["lina", "李娜", "resigned"]
    assert await cmd_staff(args("staff", "show", "lina"), settings, clock=clock) == 0
    out = capsys.readouterr().out
    assert "team lead:   wangqiang (王强; HR file)" in out and "status:      resigned" in out
    assert await cmd_staff(args("staff", "show", "wangqiang"), settings, clock=clock) == 0
    assert "team:        lina" in capsys.readouterr().out


async def test_a_bad_file_imports_nothing(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_settings(db_url)
    path = tmp_path / "hr.csv"
    path.write_text(HR + "wangwu,,A,,active\nzhaoliu,赵六,A,boss,active\n", encoding="utf-8")
    assert await cmd_staff(args("staff", "import", str(path)), settings, clock=FakeClock()) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"{path}:5: name: empty",
                   f"{path}:6: team_lead: unknown member 'boss' (neither in this file nor in the directory)",
                   f"scrm: nothing imported: 2 problem(s) in {path}"]
    engine = make_engine(db_url)
    try:
        async with make_sessionmaker(engine)() as session:
            assert await session.scalar(select(func.count()).select_from(Member)) == 0
            assert await session.scalar(select(func.count()).select_from(StaffProfile)) == 0
    finally:
        await engine.dispose()


async def test_the_hr_team_lead_overrides_the_wecom_leader(db_url: str, tmp_path: Path) -> None:
    """WeCom places the member; the HR file's team lead wins over the department's leader, until
    a file without it gives the department's leader back."""
    async with stack(db_url, tmp_path) as s:
        assert await cmd_staff(args("staff", "sync"), s.settings, clock=s.clock) == 0
        path = tmp_path / "hr.csv"
        path.write_text("userid,name,department,team_lead,status\nzhangwei,张伟,总行/某部,lina,active\n",
                        encoding="utf-8")
        assert await cmd_staff(args("staff", "import", str(path)), s.settings, clock=s.clock) == 0
        rows = await members(s.runtime.sessions)
        # lina is known from the directory; WeCom's path wins for a member WeCom placed
        assert rows["zhangwei"] == ("张伟", "杭州分行/城西支行/代发服务团队", "lina", "active")
        assert await cmd_staff(args("staff", "sync"), s.settings, clock=s.clock) == 0
        assert (await members(s.runtime.sessions))["zhangwei"][2] == "lina"  # a sync keeps the override
        await s.driver.delete_user("lina")  # an override naming someone who left does not count
        await s.run()
        assert (await members(s.runtime.sessions))["zhangwei"][2] == "wangqiang"
        path.write_text("userid,name,department,team_lead,status\nzhangwei,张伟,,,active\n", encoding="utf-8")
        assert await cmd_staff(args("staff", "import", str(path)), s.settings, clock=s.clock) == 0
        assert (await members(s.runtime.sessions))["zhangwei"][2] == "wangqiang"


async def test_show_an_unknown_member_is_a_user_error(sqlite_url: str) -> None:
    with pytest.raises(UserError, match=r"^no member 'nobody' in the staff directory$"):
        await cmd_staff(args("staff", "show", "nobody"), make_settings(sqlite_url), clock=FakeClock())


def test_operator_mistakes_are_one_line_and_exit_2(sqlite_url: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SCRM_DATABASE__URL", sqlite_url)
    assert main(["staff", "show", "nobody"]) == 2
    assert capsys.readouterr().err == "scrm: no member 'nobody' in the staff directory\n"
    assert main(["staff", "import", str(tmp_path / "missing.csv")]) == 2
    assert capsys.readouterr().err == f"scrm: cannot read {tmp_path / 'missing.csv'}: No such file or directory\n"
    bad = tmp_path / "bad.csv"
    bad.write_text("userid,name\nu1,甲\n", encoding="utf-8")
    assert main(["staff", "import", str(bad)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{bad}:1: header: missing column(s) department, team_lead, status "
        "(expected userid,name,department,team_lead,status)",
        f"scrm: nothing imported: 1 problem(s) in {bad}"]
    monkeypatch.setenv("SCRM_DATABASE__URL", f"sqlite+aiosqlite:///{tmp_path / 'none.db'}")
    assert main(["staff", "list"]) == 2  # no database yet: one line, like every command
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("scrm: ")
