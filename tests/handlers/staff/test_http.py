"""The HR system's push of the staff directory (``POST /crm/v1/staff``): signed like every CRM
push, all or nothing, every record's problem named; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from handlers.crm import auth
from tests.handlers.staff.support import members
from tests.support.stack import Stack, stack

SECRET = "hr-push-secret"
PATH = "/crm/v1/staff"


async def _push(s: Stack, body: Any, *, secret: str = SECRET) -> tuple[int, dict[str, Any]]:
    raw = json.dumps(body, ensure_ascii=False).encode()
    headers = auth.headers(secret, int(s.clock.now().timestamp()), raw)
    resp = await s.client.post(PATH, data=raw, headers=headers)
    return resp.status, await resp.json()


async def test_hr_push_puts_the_directory_in(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path, demo=False, sections={"crm": {"hmac_secret": SECRET}}) as s:
        status, body = await _push(s, {"members": [
            {"userid": "wangqiang", "name": "王强", "department": "杭州分行/城西支行/代发服务团队"},
            {"userid": "zhangwei", "name": "张伟", "department": "杭州分行/城西支行/代发服务团队",
             "team_lead": "wangqiang", "status": "active"},
            {"userid": "lina", "name": "李娜", "department": "杭州分行/城东支行", "status": "离职"},
        ]})
        assert status == 200, body
        # lina arrives already resigned: new, not a departure
        assert body == {"accepted": 3, "added": ["lina", "wangqiang", "zhangwei"], "updated": [], "resigned": []}
        got = await members(s.runtime.sessions)
        assert got["zhangwei"] == ("张伟", "杭州分行/城西支行/代发服务团队", "wangqiang", "active")
        assert got["lina"][3] == "resigned"
        # Pushing the same again changes nothing; a departure is reported as one.
        zhangwei = {"userid": "zhangwei", "name": "张伟", "department": "杭州分行/城西支行/代发服务团队",
                    "team_lead": "wangqiang"}
        status, body = await _push(s, {"members": [zhangwei]})
        assert (status, body["updated"], body["resigned"]) == (200, [], [])
        status, body = await _push(s, {"members": [{**zhangwei, "status": "resigned"}]})
        assert (status, body["resigned"]) == (200, ["zhangwei"])


async def test_a_bad_record_rejects_the_whole_push(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path, demo=False, sections={"crm": {"hmac_secret": SECRET}}) as s:
        status, body = await _push(s, {"members": [
            {"userid": "zhangwei", "name": "张伟", "department": "杭州分行"},
            {"userid": "lina", "name": "", "department": "杭州分行//城东"},
            {"userid": "zhangwei", "name": "张伟2", "department": ""},
            {"userid": "gaofei", "name": "高飞", "department": "", "team_lead": "nobody"},
            {"userid": "x", "name": 3},
            "not an object",
            {"userid": "y", "name": "Y", "mobile": "138"},
        ]})
        assert status == 400
        assert body == {"error": "7 invalid record(s); nothing stored", "details": [
            "members[1]: name: empty",
            "members[1]: department: empty level in '杭州分行//城东' (levels are separated by '/')",
            "members[2]: userid: 'zhangwei' is already members[0]",
            "members[3]: team_lead: unknown member 'nobody' (neither in this file nor in the directory)",
            "members[4]: name: must be a string",
            "members[5]: expected an object with userid, name, department, team_lead, status",
            "members[6]: unknown field(s) mobile",
        ]}
        assert await members(s.runtime.sessions) == {}


async def test_unsigned_or_badly_signed_pushes_are_refused(sqlite_url: str, tmp_path: Path) -> None:
    async with stack(sqlite_url, tmp_path, demo=False, sections={"crm": {"hmac_secret": SECRET}}) as s:
        body = {"members": [{"userid": "zhangwei", "name": "张伟", "department": ""}]}
        assert (await _push(s, body, secret="wrong"))[0] == 401
        assert (await s.client.post(PATH, json=body)).status == 401
        assert await members(s.runtime.sessions) == {}
