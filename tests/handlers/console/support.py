"""The console on the sandbox stack: the demo bank's directory synced (department paths, so
scopes mean something), an access file, and signing in the way a browser does."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from handlers.staff.directory import apply_snapshot
from handlers.staff.sync import read_directory
from tests.support.stack import Stack, stack
from tests.support.web import back_from_wecom

ACCESS = """\
members:
  zhouhai: {role: ops_admin}
  mali: {role: branch_head, scope: 杭州分行/城西支行}
  wangqiang: {role: team_lead, scope: 杭州分行/城西支行/代发服务团队}
  xuming: {role: team_lead, scope: 杭州分行/城东支行/零售客户团队}
  sunhui: {role: auditor}
"""


@contextlib.asynccontextmanager
async def console_stack(db_url: str, root: Path, *, access: str = ACCESS, port: int | None = None,
                        console: dict[str, Any] | None = None) -> AsyncIterator[Stack]:
    # Plain HTTP on loopback, as the test client speaks it (an https address makes the cookie
    # Secure, which a browser then never sends over http).
    sections: dict[str, Any] = {"console": console or {},
                                "server": {"public_url": f"http://127.0.0.1:{port or 8080}"}}
    async with stack(db_url, root, sections=sections, port=port) as s:
        (s.settings.playbook.sop_dir / "console.yaml").write_text(access, encoding="utf-8")
        snapshot = await read_directory(s.runtime.wecom)
        async with s.runtime.sessions() as session, session.begin():
            await apply_snapshot(session, snapshot, s.clock.now())
        yield s


async def sign_in(s: Stack, userid: str) -> aiohttp.ClientResponse:
    """WeCom's web login as ``userid``: the console's redirect, the sandbox's login page, then the
    console's callback (its host is the configured public URL; the test client keeps the path)."""
    start = await s.client.get(f"/console/login/wecom?viewer={userid}", allow_redirects=False)
    assert start.status == 302, await start.text()
    return await s.client.get(await back_from_wecom(start.headers["Location"]), allow_redirects=False)


async def csrf_of(s: Stack) -> str:
    """The signed-in session's CSRF token, as the pages carry it."""
    page = await (await s.client.get("/console/")).text()
    marker = 'name="csrf_token" value="'
    start = page.index(marker) + len(marker)
    return page[start:page.index('"', start)]
