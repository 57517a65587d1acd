"""The address book's ``change_contact`` callbacks, sent by the sandbox's driver through the real
callback endpoint: members and departments created, changed and deleted."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from handlers.staff.cli import cmd_staff
from handlers.staff.models import StaffDepartment
from scrm.adapters.wecom import events as ev
from scrm.kernel.models import InboxEvent
from scrm.sandbox import event_xml as ex
from tests.handlers.staff.support import args, members
from tests.support.stack import Stack, stack

EAST = "杭州分行/城东支行"


async def _departments(s: Stack) -> dict[int, StaffDepartment]:
    async with s.runtime.sessions() as session:
        return {d.id: d for d in (await session.scalars(select(StaffDepartment))).all()}


async def _inbox_statuses(s: Stack) -> list[str]:
    async with s.runtime.sessions() as session:
        return list((await session.scalars(select(InboxEvent.status).order_by(InboxEvent.id))).all())


async def test_member_and_department_callbacks(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path) as s:
        assert await cmd_staff(args("staff", "sync"), s.settings, clock=s.clock) == 0
        # a new team under the east sub-branch, its lead, then a member
        assert (await s.driver.create_party(22, "小微金融团队", 20, order=5)).delivered
        await s.run()
        team = (await _departments(s))[22]
        assert (team.name, team.parent_id, team.sort_order) == ("小微金融团队", 20, 5)
        await s.driver.create_user("zhaolei", "赵磊", [22], leader_in=[22], position="团队长")
        await s.driver.create_user("qianyu", "钱宇", [22], position="客户经理")
        await s.run()
        rows = await members(s.runtime.sessions)
        assert rows["zhaolei"] == ("赵磊", f"{EAST}/小微金融团队", "hemin", "active")
        assert rows["qianyu"] == ("钱宇", f"{EAST}/小微金融团队", "zhaolei", "active")
        assert (await _departments(s))[22].leaders == ["zhaolei"]

        # renaming the team renames everyone's path; moving a member moves their lead
        await s.driver.update_party(22, name="普惠金融团队")
        await s.driver.update_user("qianyu", department=[21])
        await s.run()
        rows = await members(s.runtime.sessions)
        assert rows["zhaolei"][1] == f"{EAST}/普惠金融团队"
        assert rows["qianyu"][1:3] == (f"{EAST}/零售客户团队", "xuming")

        # a new lead for the retail team (the old one stays a member): the team follows
        await s.driver.update_user("gaofei", leader_in=[21])
        await s.driver.update_user("xuming", leader_in=[])
        await s.run()
        rows = await members(s.runtime.sessions)
        assert rows["qianyu"][2] == "gaofei" and rows["xuming"][2] == "gaofei" and rows["gaofei"][2] == "hemin"
        assert (await _departments(s))[21].leaders == ["gaofei"]

        # a member leaves: resigned, never deleted; their team escalates above them
        await s.driver.delete_user("wangqiang")
        await s.run()
        rows = await members(s.runtime.sessions)
        assert rows["wangqiang"][3] == "resigned" and rows["wangqiang"][0] == "王强"
        assert rows["zhangwei"][2] == "mali"
        assert "wangqiang" not in (await _departments(s))[2].leaders

        # an empty department is deleted
        await s.driver.create_party(23, "临时项目组", 1)
        await s.run()
        assert 23 in await _departments(s)
        await s.driver.delete_party(23)
        await s.run()
        assert 23 not in await _departments(s)
        assert set(await _inbox_statuses(s)) == {"done"}


async def test_member_callbacks_without_address_book_rights_use_the_event(sqlite_url: str, tmp_path: Path) -> None:
    """When user/get is refused (60011), the callback's own fields are applied."""
    async with stack(sqlite_url, tmp_path) as s:
        assert await cmd_staff(args("staff", "sync"), s.settings, clock=s.clock) == 0
        s.server.faults.error("user/get", 60011)
        await s.driver.create_user("zhaolei", "赵磊", [21])
        await s.driver.update_user("lina", name="李娜娜")
        await s.run()
        rows = await members(s.runtime.sessions)
        assert rows["zhaolei"] == ("赵磊", f"{EAST}/零售客户团队", "xuming", "active")
        assert rows["lina"][:3] == ("李娜娜", "杭州分行/城西支行/代发服务团队", "wangqiang")
        assert set(await _inbox_statuses(s)) == {"done"}


async def test_a_directory_event_nobody_handles_is_harmless(sqlite_url: str, tmp_path: Path) -> None:
    async with stack(sqlite_url, tmp_path) as s:
        before = await members(s.runtime.sessions)
        fields = [*ex.header(s.driver.corp_id, int(s.clock.now().timestamp()), "change_contact"),
                  ("ChangeType", "update_tag"), ("TagId", "1"), ("AddUserItems", "zhangwei")]
        assert (await s.driver.deliver(fields)).delivered
        await s.run()
        assert await _inbox_statuses(s) == ["done"]
        assert await members(s.runtime.sessions) == before


def test_change_contact_events_are_typed_and_ordered_together() -> None:
    base = {"ToUserName": "ww", "FromUserName": "sys", "CreateTime": "1", "MsgType": "event",
            "Event": "change_contact"}
    user = ev.parse_event({**base, "ChangeType": "update_user", "UserID": "u1", "NewUserID": "u2",
                           "Department": "1,22", "IsLeaderInDept": "0,1", "MainDepartment": "22", "Status": "1"})
    assert isinstance(user, ev.UpdateUser)
    assert (user.department, user.is_leader_in_dept, user.main_department, user.new_user_id) == ((1, 22), (0, 1),
                                                                                                  22, "u2")
    party = ev.parse_event({**base, "ChangeType": "create_party", "Id": "22", "Name": "团队", "ParentId": "20"})
    assert isinstance(party, ev.CreateParty) and (party.id, party.parent_id, party.order) == (22, 20, None)
    assert isinstance(ev.parse_event({**base, "ChangeType": "delete_user", "UserID": "u1"}), ev.DeleteUser)
    assert isinstance(ev.parse_event({**base, "ChangeType": "delete_party", "Id": "3"}), ev.DeleteParty)
    assert isinstance(ev.parse_event({**base, "ChangeType": "update_tag", "TagId": "1"}), ev.UnknownEvent)
    assert ev.header_of({**base, "ChangeType": "delete_user", "UserID": "u1"}).order_key == "directory"
    try:
        ev.parse_event({**base, "ChangeType": "create_user", "UserID": "u1", "Department": "1,x"})
    except ev.XmlError as exc:
        assert "contact.create_user: Department" in str(exc)
    else:
        raise AssertionError("a non-integer department must be refused")
