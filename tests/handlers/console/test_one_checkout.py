"""A console page view is read on one pooled connection, the sign-in's session row included, on
SQLite and PostgreSQL: each checkout costs a pre-ping (three round trips on PostgreSQL) and a
transaction of its own, paid by every view when the session row was read on a connection of its
own. The pages still answer as before (``test_http.py`` and each page's tests); here only the
checkouts are counted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event

from tests.handlers.console.support import console_stack, sign_in

PAGES = ("/console/", "/console/tasks?days=7", "/console/cockpit?days=7", "/console/cockpit?days=30",
         "/console/ops", "/console/audit", "/console/customers", "/console/materials", "/console/calendar",
         "/console/effect?days=7")


async def test_each_page_view_takes_one_connection_from_the_pool(db_url: str, tmp_path: Path) -> None:
    async with console_stack(db_url, tmp_path) as s:
        assert (await sign_in(s, "zhouhai")).status in (302, 303)
        checkouts: list[str] = []

        def counted(*_a: Any) -> None:
            checkouts.append("checkout")

        pool = s.runtime.engine.sync_engine.pool
        event.listen(pool, "checkout", counted)
        try:
            for path in PAGES:
                for view in ("first", "again"):  # a computed view and a kept one alike
                    checkouts.clear()
                    resp = await s.client.get(path)
                    assert resp.status == 200, (path, await resp.text())
                    assert len(checkouts) == 1, (path, view)
            s.client.session.cookie_jar.clear()  # not signed in: sent to sign in without a checkout
            checkouts.clear()
            assert (await s.client.get("/console/", allow_redirects=False)).status == 303
            assert checkouts == []
        finally:
            event.remove(pool, "checkout", counted)
