"""The console in a real browser (headless Chromium through Playwright): signing in through
WeCom's web login (the sandbox's page), the pages, htmx actions, CSRF, and a team lead kept to
their team. Set CONSOLE_SCREENSHOTS_DIR to keep screenshots of the main pages (the README's)."""

from __future__ import annotations

import os
import re
import socket
from datetime import timedelta
from pathlib import Path

from playwright.async_api import Browser, Page, expect
from sqlalchemy import select

from handlers.console.models import ConsoleAudit
from handlers.sop.api import SopTask
from scrm.kernel.models import InboxEvent, OutboxAction
from tests.handlers.console.support import console_stack
from tests.support.stack import Stack


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("CONSOLE_SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def _seed(s: Stack) -> tuple[int, int]:
    now, today = s.clock.now(), s.clock.now().date()
    async with s.runtime.sessions() as db, db.begin():
        dead = InboxEvent(dedup_key="dead-1", source="wecom", received_at=now - timedelta(minutes=42), raw="<xml/>",
                          msg_type="event", event="change_external_chat", change_type="update", status="dead",
                          attempts=8, next_attempt_at=now, last_error="groupchat/get: 40050 chat not found")
        unknown = OutboxAction(idempotency_key="welcome:WC1", kind="wecom",
                               payload={"api": "externalcontact/send_welcome_msg", "body": {}}, status="unknown",
                               attempts=1, next_attempt_at=now, created_at=now,
                               last_error="timeout after the request was sent")
        db.add_all([dead, unknown])
        for i, (userid, status, ago) in enumerate([("zhangwei", "open", 0), ("zhangwei", "open", 2),
                                                   ("lina", "done", 1), ("gaofei", "open", 1)]):
            db.add(SopTask(task_id=f"t{i}", key=f"k{i}", userid=userid, source="reminder:birthday", title="生日",
                           day=today - timedelta(days=ago), status=status, created_at=now))
        await db.flush()
        return dead.id, unknown.id


async def _sign_in(page: Page, base: str, member_label: str) -> None:
    await page.goto(f"{base}/console/ops")
    await expect(page).to_have_url(f"{base}/console/login")
    await page.click("#wecom-login")
    await page.get_by_role("link", name=member_label).click()  # the sandbox's stand-in for the QR scan
    await expect(page).to_have_url(f"{base}/console/")


async def test_an_ops_admin_signs_in_and_works_the_operations_page(sqlite_url: str, tmp_path: Path,
                                                                    browser: Browser) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    async with console_stack(sqlite_url, tmp_path, port=port) as s:
        dead, unknown = await _seed(s)
        context = await browser.new_context(locale="zh-CN")
        page = await context.new_page()
        await _sign_in(page, base, "周海（zhouhai）")
        await expect(page.locator("#who")).to_have_text("周海")
        await expect(page.locator("#role")).to_have_text("运营管理员")
        await expect(page.locator("#dead-letters")).to_have_text("1")
        await expect(page.locator("#stuck-actions")).to_have_text("1")
        await page.screenshot(path=str(_shots(tmp_path) / "console-home.png"), full_page=True)

        await page.click("text=运行状态")
        row = page.locator(f"#inbox-{dead}")
        await expect(row).to_contain_text("40050 chat not found")
        await page.screenshot(path=str(_shots(tmp_path) / "console-ops.png"), full_page=True)
        await row.get_by_role("button", name="重新投递").click()
        await expect(page.locator("td.done")).to_contain_text(f"#{dead} 已重新投递")
        await page.locator(f"#outbox-{unknown}").get_by_role("button", name="记为已发送").click()
        await expect(page.locator("td.done").nth(1)).to_contain_text(f"#{unknown} 已记为已发送")
        async with s.runtime.sessions() as db:
            assert (await db.get(InboxEvent, dead)).status == "pending"  # type: ignore[union-attr]
            assert (await db.get(OutboxAction, unknown)).status == "sent"  # type: ignore[union-attr]

        # The same request without the page's CSRF token (another site's form could send it).
        forged = await page.request.post(f"{base}/console/ops/outbox/{unknown}/retry", form={"x": "1"})
        assert forged.status == 403
        async with s.runtime.sessions() as db:
            assert (await db.get(OutboxAction, unknown)).status == "sent"  # type: ignore[union-attr]
            actions = (await db.scalars(select(ConsoleAudit.action).where(ConsoleAudit.actor == "zhouhai")
                                        .order_by(ConsoleAudit.id))).all()
        assert {"signin", "replay", "sent", "csrf_refused"} <= set(actions)
        await context.close()


async def test_a_team_lead_sees_their_team_only(sqlite_url: str, tmp_path: Path, browser: Browser) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    async with console_stack(sqlite_url, tmp_path, port=port) as s:
        await _seed(s)
        context = await browser.new_context(locale="zh-CN")
        page = await context.new_page()
        await page.goto(f"{base}/console/")
        await page.click("#wecom-login")
        await page.get_by_role("link", name="王强（wangqiang）").click()
        await expect(page).to_have_url(f"{base}/console/")
        await expect(page.locator("header nav")).not_to_contain_text("运行状态")
        response = await page.goto(f"{base}/console/ops")
        assert response is not None and response.status == 403
        await expect(page.locator("h1")).to_have_text("无权访问")
        await page.goto(f"{base}/console/tasks?days=7")
        rows = page.locator("#task-table tbody tr")
        await expect(rows).to_have_count(2)  # zhangwei and lina; gaofei's team is another branch
        await expect(page.locator("#task-table")).not_to_contain_text("高飞")
        await expect(page.locator('[data-total="issued"]')).to_have_text("3")
        await expect(page.locator('[data-total="overdue"]')).to_have_text("1")
        await page.screenshot(path=str(_shots(tmp_path) / "console-tasks.png"), full_page=True)
        await page.click("text=退出")
        await expect(page).to_have_url(re.compile(r".*/console/login$"))
        await context.close()
