"""The console over HTTP: the sign-in gate, roles and scopes, CSRF, the operators' actions and the
audit log, on SQLite and PostgreSQL. Expected figures come from the rows each test writes."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from argon2 import PasswordHasher
from sqlalchemy import select

from handlers.console.models import ConsoleAudit, ConsoleSession
from handlers.sop.api import SopTask
from scrm.kernel.models import InboxEvent, OutboxAction
from tests.handlers.console.support import console_stack, csrf_of, sign_in
from tests.support.stack import Stack

ROUTES = ["/console/", "/console/ops", "/console/tasks", "/console/audit"]


async def _audit(s: Stack) -> list[tuple[str, str, str]]:
    async with s.runtime.sessions() as db:
        rows = (await db.scalars(select(ConsoleAudit).order_by(ConsoleAudit.id))).all()
    return [(r.actor, r.action, r.target) for r in rows]


async def _dead_letter(s: Stack) -> int:
    now = s.clock.now()
    async with s.runtime.sessions() as db, db.begin():
        row = InboxEvent(dedup_key="dead-1", source="wecom", received_at=now, raw="<xml/>", msg_type="event",
                         event="change_external_contact", change_type="add_external_contact", status="dead",
                         attempts=8, next_attempt_at=now, last_error="handler failed: boom")
        db.add(row)
        await db.flush()
        return row.id


async def _outbox(s: Stack, status: str, key: str) -> int:
    now = s.clock.now()
    async with s.runtime.sessions() as db, db.begin():
        row = OutboxAction(idempotency_key=key, kind="wecom", payload={"api": "externalcontact/mark_tag", "body": {}},
                           status=status, attempts=3, next_attempt_at=now, created_at=now,
                           last_error="timeout after sending")
        db.add(row)
        await db.flush()
        return row.id


async def test_every_page_needs_a_session(db_url: str, tmp_path: Path) -> None:
    async with console_stack(db_url, tmp_path) as s:
        for route in ROUTES:
            resp = await s.client.get(route, allow_redirects=False)
            assert (resp.status, resp.headers.get("Location")) == (303, "/console/login"), route
        # A state-changing request without a session has no CSRF token either: refused, nothing done.
        dead = await _dead_letter(s)
        resp = await s.client.post(f"/console/ops/inbox/{dead}/replay", allow_redirects=False)
        assert resp.status == 403
        async with s.runtime.sessions() as db:
            assert (await db.get(InboxEvent, dead)).status == "dead"  # type: ignore[union-attr]
        login = await s.client.get("/console/login")
        assert login.status == 200 and "企业微信扫码登录" in await login.text()


async def test_ops_admin_replays_a_dead_letter_and_resolves_actions(db_url: str, tmp_path: Path) -> None:
    async with console_stack(db_url, tmp_path) as s:
        dead = await _dead_letter(s)
        unknown = await _outbox(s, "unknown", "tag:a")
        failed = await _outbox(s, "failed", "tag:b")
        resp = await sign_in(s, "zhouhai")
        assert (resp.status, resp.headers["Location"]) == (303, "/console/")
        page = await (await s.client.get("/console/ops")).text()
        assert f'id="inbox-{dead}"' in page and f'id="outbox-{unknown}"' in page and f'id="outbox-{failed}"' in page
        assert "handler failed: boom" in page
        token = await csrf_of(s)
        headers = {"X-CSRF-Token": token, "HX-Request": "true"}
        resp = await s.client.post(f"/console/ops/inbox/{dead}/replay", headers=headers)
        assert resp.status == 200 and "已重新投递" in await resp.text()
        resp = await s.client.post(f"/console/ops/outbox/{unknown}/sent", data={"csrf_token": token},
                                   allow_redirects=False)
        assert (resp.status, resp.headers["Location"]) == (303, "/console/ops")
        assert (await s.client.post(f"/console/ops/outbox/{failed}/retry", headers=headers)).status == 200
        # Replaying again changes nothing (the row is no longer dead) and says so.
        again = await s.client.post(f"/console/ops/inbox/{dead}/replay", headers=headers)
        assert "未操作" in await again.text()
        async with s.runtime.sessions() as db:
            assert (await db.get(InboxEvent, dead)).status == "pending"  # type: ignore[union-attr]
            sent = await db.get(OutboxAction, unknown)
            assert sent is not None and sent.status == "sent" and sent.result == {"resolved": "sent", "by": "zhouhai"}
            assert (await db.get(OutboxAction, failed)).status == "pending"  # type: ignore[union-attr]
        trail = await _audit(s)
        assert ("zhouhai", "signin", "wecom") in trail
        assert ("zhouhai", "replay", f"inbox:{dead}") in trail
        assert ("zhouhai", "sent", f"outbox:{unknown}") in trail
        assert ("zhouhai", "retry", f"outbox:{failed}") in trail


async def test_csrf_token_is_required_for_every_change(db_url: str, tmp_path: Path) -> None:
    async with console_stack(db_url, tmp_path) as s:
        dead = await _dead_letter(s)
        await sign_in(s, "zhouhai")
        for headers in ({}, {"X-CSRF-Token": "forged"}):
            resp = await s.client.post(f"/console/ops/inbox/{dead}/replay", headers=headers)
            assert resp.status == 403 and "CSRF" in await resp.text()
        async with s.runtime.sessions() as db:
            assert (await db.get(InboxEvent, dead)).status == "dead"  # type: ignore[union-attr]
        assert [a for a in await _audit(s) if a[1] == "csrf_refused"] == [
            ("zhouhai", "csrf_refused", f"/console/ops/inbox/{dead}/replay")] * 2


async def test_roles_see_and_do_only_what_they_may(db_url: str, tmp_path: Path) -> None:
    async with console_stack(db_url, tmp_path) as s:
        dead = await _dead_letter(s)
        await sign_in(s, "sunhui")  # auditor: sees operations and the audit log, changes nothing
        assert (await s.client.get("/console/ops")).status == 200
        assert (await s.client.get("/console/audit")).status == 200
        ops = await (await s.client.get("/console/ops")).text()
        assert "重新投递" not in ops
        token = await csrf_of(s)
        resp = await s.client.post(f"/console/ops/inbox/{dead}/replay", headers={"X-CSRF-Token": token})
        assert resp.status == 403
        s.client.session.cookie_jar.clear()
        await sign_in(s, "wangqiang")  # team lead: neither operations nor the audit log
        for route in ("/console/ops", "/console/audit"):
            assert (await s.client.get(route)).status == 403, route
        async with s.runtime.sessions() as db:
            assert (await db.get(InboxEvent, dead)).status == "dead"  # type: ignore[union-attr]
        refused = [(a, t) for a, action, t in await _audit(s) if action == "forbidden"]
        assert refused == [("sunhui", f"/console/ops/inbox/{dead}/replay"), ("wangqiang", "/console/ops"),
                           ("wangqiang", "/console/audit")]


async def test_tasks_are_scoped_to_the_viewer(db_url: str, tmp_path: Path) -> None:
    """Cards of three teams; each lead and the branch head see exactly their part, figures
    counted here from the rows written."""
    async with console_stack(db_url, tmp_path) as s:
        today = s.clock.now().date()  # the fake clock's start is morning in Shanghai as in UTC
        cards = [  # (userid, status, days ago)
            ("zhangwei", "open", 0), ("zhangwei", "open", 3), ("zhangwei", "done", 1), ("lina", "escalated", 2),
            ("chenjing", "not_relevant", 1), ("chenjing", "open", 5), ("gaofei", "done", 0), ("gaofei", "open", 2),
            ("gaofei", "open", 40),  # outside 30 days
        ]
        async with s.runtime.sessions() as db, db.begin():
            for i, (userid, status, ago) in enumerate(cards):
                db.add(SopTask(task_id=f"t{i}", key=f"k{i}", userid=userid, source="reminder:test", title="t",
                               day=today - timedelta(days=ago), status=status, created_at=s.clock.now()))

        def expected(users: set[str]) -> dict[str, int]:
            rows = [c for c in cards if c[0] in users and c[2] < 30]
            return {"issued": len(rows), "open": sum(c[1] == "open" for c in rows),
                    "overdue": sum(c[1] == "open" and c[2] > 0 for c in rows)}

        async def seen_by(userid: str) -> tuple[set[str], dict[str, int]]:
            s.client.session.cookie_jar.clear()
            await sign_in(s, userid)
            page = await (await s.client.get("/console/tasks?days=30")).text()
            users = {part.split('"')[0] for part in page.split('data-userid="')[1:]}
            totals = dict(re.findall(r'data-total="(\w+)">(\d+)<', page))
            return users, {k: int(totals[k]) for k in ("issued", "open", "overdue")}

        assert await seen_by("wangqiang") == ({"zhangwei", "lina"}, expected({"zhangwei", "lina"}))
        assert await seen_by("xuming") == ({"gaofei"}, expected({"gaofei"}))
        west = {"zhangwei", "lina", "chenjing"}
        assert await seen_by("mali") == (west, expected(west))
        everyone = {c[0] for c in cards}
        assert await seen_by("zhouhai") == (everyone, expected(everyone))


async def test_sign_in_is_refused_to_outsiders_and_forged_states(db_url: str, tmp_path: Path) -> None:
    async with console_stack(db_url, tmp_path) as s:
        resp = await sign_in(s, "zhangwei")  # a manager, not in the access file
        assert resp.status == 403 and "没有控制台权限" in await resp.text()
        assert (await s.client.get("/console/", allow_redirects=False)).status == 303
        forged = await s.client.get("/console/login/callback?code=x&state=abc", allow_redirects=False)
        assert forged.status == 400
        assert ("zhangwei", "signin_refused", "wecom") in await _audit(s)


async def test_leaving_the_access_file_or_going_idle_ends_the_session(db_url: str, tmp_path: Path) -> None:
    async with console_stack(db_url, tmp_path, console={"idle_timeout_s": 600}) as s:
        await sign_in(s, "wangqiang")
        assert (await s.client.get("/console/tasks")).status == 200
        s.clock.advance(minutes=9)  # active within the idle limit: still signed in
        assert (await s.client.get("/console/tasks", allow_redirects=False)).status == 200
        s.clock.advance(minutes=11)
        assert (await s.client.get("/console/tasks", allow_redirects=False)).status == 303
        await sign_in(s, "wangqiang")
        access = s.settings.playbook.sop_dir / "console.yaml"
        access.write_text(access.read_text(encoding="utf-8").replace("  wangqiang:", "  someone:"), encoding="utf-8")
        assert (await s.client.get("/console/tasks", allow_redirects=False)).status == 303


async def test_local_admin_locks_after_five_wrong_passwords(db_url: str, tmp_path: Path) -> None:
    hashed = PasswordHasher().hash("correct horse battery")
    async with console_stack(db_url, tmp_path, console={"admin_password_hash": hashed}) as s:
        await s.client.get("/console/login")
        token = s.client.session.cookie_jar.filter_cookies(s.client.make_url("/console/"))
        assert token  # the sign-in page started an anonymous session carrying the CSRF token
        page = await (await s.client.get("/console/login")).text()
        csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
        for _ in range(5):
            resp = await s.client.post("/console/login/local", data={"csrf_token": csrf, "user": "admin",
                                                                     "password": "wrong"})
            assert resp.status == 401
        right = {"csrf_token": csrf, "user": "admin", "password": "correct horse battery"}
        resp = await s.client.post("/console/login/local", data=right)
        assert resp.status == 401 and "15分钟" in await resp.text()
        s.clock.advance(minutes=16)
        resp = await s.client.post("/console/login/local", data=right, allow_redirects=False)
        assert (resp.status, resp.headers["Location"]) == (303, "/console/")
        home = await (await s.client.get("/console/")).text()
        assert "本地管理员" in home
        assert hashed not in home and "correct horse" not in home


async def test_no_secret_is_ever_rendered(db_url: str, tmp_path: Path) -> None:
    async with console_stack(db_url, tmp_path) as s:
        await sign_in(s, "zhouhai")
        secrets = [s.settings.wecom.secret.get_secret_value(), s.settings.wecom.token.get_secret_value(),
                   s.settings.wecom.encoding_aes_key.get_secret_value()]
        for route in ROUTES:
            body = await (await s.client.get(route)).text()
            assert not [x for x in secrets if x and x in body], route


async def test_expired_sessions_are_dropped_when_a_session_starts(db_url: str, tmp_path: Path) -> None:
    """Visits to the sign-in page start anonymous sessions; once expired they go at the next start,
    so repeated visits cannot grow the table."""
    async with console_stack(db_url, tmp_path, console={"idle_timeout_s": 600}) as s:
        for _ in range(3):
            s.client.session.cookie_jar.clear()
            assert (await s.client.get("/console/login")).status == 200
        async with s.runtime.sessions() as db:
            assert len((await db.scalars(select(ConsoleSession))).all()) == 3
        s.clock.advance(minutes=11)
        s.client.session.cookie_jar.clear()
        await s.client.get("/console/login")
        async with s.runtime.sessions() as db:
            assert len((await db.scalars(select(ConsoleSession))).all()) == 1


async def test_a_request_moves_the_idle_limit_on_at_most_once_a_minute(db_url: str, tmp_path: Path) -> None:
    async with console_stack(db_url, tmp_path, console={"idle_timeout_s": 600}) as s:
        await sign_in(s, "wangqiang")

        async def expiry() -> object:
            async with s.runtime.sessions() as db:
                return (await db.scalars(select(ConsoleSession.expires_at))).one()

        signed_in = await expiry()
        s.clock.advance(seconds=30)
        assert (await s.client.get("/console/tasks")).status == 200
        assert await expiry() == signed_in  # within the minute: no write
        s.clock.advance(seconds=31)
        assert (await s.client.get("/console/tasks")).status == 200
        assert await expiry() == s.clock.now() + timedelta(seconds=600)
