"""The address book (通讯录): department/list, user/simplelist, user/list_id, user/get, and the
driver's change_contact events."""

from __future__ import annotations

from tests.sandbox.conftest import Driven, Sandbox


async def test_departments_and_members_of_the_demo_bank(sandbox: Sandbox) -> None:
    reply = await sandbox.api.get("department/list")
    depts = {d["id"]: d for d in reply["department"]}
    assert {i: (d["name"], d["parentid"]) for i, d in depts.items()} == {
        1: ("杭州分行", 0), 10: ("城西支行", 1), 2: ("代发服务团队", 10), 3: ("财富管理团队", 10),
        20: ("城东支行", 1), 21: ("零售客户团队", 20)}
    assert depts[2]["department_leader"] == ["wangqiang"] and depts[1]["department_leader"] == ["zhouhai"]
    west = await sandbox.api.get("department/list", id=10)
    assert [d["id"] for d in west["department"]] == [10, 2, 3]  # the department, then those below
    assert (await sandbox.api.get("department/list", id=99))["errcode"] == 60123

    team = await sandbox.api.get("user/simplelist", department_id=2)
    assert sorted(u["userid"] for u in team["userlist"]) == ["lina", "wangqiang", "zhangwei"]
    assert {u["userid"]: u["name"] for u in team["userlist"]}["zhangwei"] == "张伟"
    whole = await sandbox.api.get("user/simplelist", department_id=10, fetch_child=1)
    assert len(whole["userlist"]) == 6
    assert (await sandbox.api.get("user/simplelist"))["errcode"] == 40058

    user = await sandbox.api.get("user/get", userid="wangqiang")
    assert (user["name"], user["department"], user["main_department"], user["is_leader_in_dept"]) == (
        "王强", [2], 2, [1])
    assert (await sandbox.api.get("user/get", userid="zhangwei"))["is_leader_in_dept"] == [0]

    first = await sandbox.api.post("user/list_id", {"limit": 4})
    second = await sandbox.api.post("user/list_id", {"cursor": first["next_cursor"], "limit": 100})
    pairs = first["dept_user"] + second["dept_user"]
    assert len(pairs) == len(sandbox.state.members) and second["next_cursor"] == ""

    # a member who left is gone from the address book
    sandbox.state.resign_member("lina", sandbox.clock.now().timestamp())
    assert (await sandbox.api.get("user/get", userid="lina"))["errcode"] == 60111
    team = await sandbox.api.get("user/simplelist", department_id=2)
    assert "lina" not in [u["userid"] for u in team["userlist"]]


async def test_the_driver_sends_change_contact_events(driven: Driven) -> None:
    d, state = driven.driver, driven.sandbox.state
    await d.create_party(22, "小微金融团队", 20)
    await d.create_user("zhaolei", "赵磊", [22], leader_in=[22])
    await d.update_user("zhaolei", name="赵磊磊")
    await d.update_party(22, name="普惠金融团队")
    await d.delete_user("zhaolei")
    await d.create_party(23, "临时组", 1)
    await d.delete_party(23)
    events = [{child.tag: child.text or "" for child in e} for e in driven.target.events]
    assert [(e["Event"], e["ChangeType"]) for e in events] == [("change_contact", c) for c in (
        "create_party", "create_user", "update_user", "update_party", "delete_user", "create_party", "delete_party")]
    assert (events[1]["UserID"], events[1]["Department"], events[1]["IsLeaderInDept"],
            events[1]["MainDepartment"]) == ("zhaolei", "22", "1", "22")
    assert "Department" not in events[2] and events[2]["Name"] == "赵磊磊"  # only what changed
    assert events[3] == {**events[3], "Id": "22", "Name": "普惠金融团队"} and "ParentId" not in events[3]
    assert state.members["zhaolei"].status == "resigned" and 23 not in state.departments
    assert state.department_leaders(22) == []
