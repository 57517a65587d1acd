"""A panel is read on one pooled connection, the sign-in's session row included, on SQLite and
PostgreSQL: each checkout costs a pre-ping (three round trips on PostgreSQL) and a transaction,
which were most of a panel's round trips when the session was loaded on a connection of its own.
The panels still answer as before (``test_http.py``); here only the checkouts are counted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event

from tests.handlers.sidebar.support import seed, sidebar_stack, sign_in


async def test_each_panel_takes_one_connection_from_the_pool(db_url: str, tmp_path: Path) -> None:
    async with sidebar_stack(db_url, tmp_path) as s:
        demo = await seed(s)
        await sign_in(s, "zhangwei")
        checkouts: list[str] = []

        def counted(*_a: Any) -> None:
            checkouts.append("checkout")

        pool = s.runtime.engine.sync_engine.pool
        event.listen(pool, "checkout", counted)
        try:
            for path in (f"/sidebar/customer/{demo.wangfang}", f"/sidebar/data/customer/{demo.wangfang}",
                         f"/sidebar/group/{demo.payroll_group}", f"/sidebar/data/group/{demo.payroll_group}"):
                checkouts.clear()
                resp = await s.client.get(path)
                assert resp.status == 200, (path, await resp.text())
                assert len(checkouts) == 1, path
            checkouts.clear()  # a refusal too: the session row and the access check on one connection
            assert (await s.client.get(f"/sidebar/customer/{demo.sunli}")).status == 403
            assert len(checkouts) == 1
            s.client.session.cookie_jar.clear()  # not signed in: refused without touching the database
            checkouts.clear()
            assert (await s.client.get(f"/sidebar/customer/{demo.wangfang}")).status == 401
            assert checkouts == []
        finally:
            event.remove(pool, "checkout", counted)
