"""The console in a real browser (headless Chromium through Playwright): signing in through
WeCom's web login (the sandbox's page), the pages, htmx actions, CSRF, and a team lead kept to
their team. Set SCREENSHOTS_DIR to keep screenshots of the main pages (the README's)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from playwright.async_api import Browser, Page, expect
from sqlalchemy import select

from handlers.console.models import ConsoleAudit
from handlers.sop.api import SopTask
from scrm.kernel.models import InboxEvent, OutboxAction
from tests.handlers.console.support import console_stack
from tests.support.stack import Stack
from tests.support.web import free_port, screenshots_dir


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
    port = free_port()
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
        await page.screenshot(path=str(screenshots_dir(tmp_path) / "console-home.png"), full_page=True)

        await page.click("text=运行状态")
        row = page.locator(f"#inbox-{dead}")
        await expect(row).to_contain_text("40050 chat not found")
        await page.screenshot(path=str(screenshots_dir(tmp_path) / "console-ops.png"), full_page=True)
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
    port = free_port()
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
        await page.screenshot(path=str(screenshots_dir(tmp_path) / "console-tasks.png"), full_page=True)
        await page.click("text=退出")
        await expect(page).to_have_url(re.compile(r".*/console/login$"))
        await context.close()


async def test_the_cockpit_shows_the_scripted_figures_and_drills_down(sqlite_url: str, tmp_path: Path,
                                                                      browser: Browser) -> None:
    from tests.handlers.console import cockpit_script as sc
    from tests.handlers.console.test_cockpit import played

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with console_stack(sqlite_url, tmp_path, port=port) as s:
        events = await played(s)
        context = await browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
        page = await context.new_page()
        await _sign_in(page, base, "周海（zhouhai）")
        await page.click("header nav >> text=驾驶舱")
        await expect(page.locator("#scope-label")).to_have_text("全行")
        want = sc.expect(events, days=30)["figures"]
        for name in ("added", "lost", "net", "reach_customers", "tasks_done", "radar_opens"):
            cell = page.locator(f'#figures tr[data-figure="{name}"] td[data-period="current"]')
            await expect(cell).to_have_text(str(want[name]["current"]))
        for chart in ("daily", "channels", "skips", "retention", "ranking"):  # ECharts drew each one
            await expect(page.locator(f"#chart-{chart}")).to_have_attribute("data-drawn", "true")
            await expect(page.locator(f"#chart-{chart} svg")).to_have_count(1)
        await page.screenshot(path=str(screenshots_dir(tmp_path) / "console-cockpit.png"), full_page=True)

        # Bank → branch → sub-branch → team, by the ranking's links.
        for label, path in (("杭州分行", "杭州分行"), ("城西支行", "杭州分行/城西支行"),
                            ("代发服务团队", sc.WEST_PAYROLL)):
            await page.locator("#teams").get_by_role("link", name=label, exact=True).click()
            await expect(page.locator("#scope-label")).to_have_text(path)
        team = sc.expect(events, days=30, dept=sc.WEST_PAYROLL)
        await expect(page.locator('#figures tr[data-figure="added"] td[data-period="current"]')).to_have_text(
            str(team["figures"]["added"]["current"]))
        await expect(page.locator("#managers tbody tr")).to_have_count(len(team["managers"]))
        await context.close()

        # A team lead sees their team, and is refused another branch.
        context = await browser.new_context(locale="zh-CN")
        page = await context.new_page()
        await _sign_in(page, base, "徐明（xuming）")
        await page.goto(f"{base}/console/cockpit?days=7")
        await expect(page.locator("#scope-label")).to_have_text(sc.EAST_RETAIL)
        response = await page.goto(f"{base}/console/cockpit?dept=杭州分行/城西支行")
        assert response is not None and response.status == 403
        await expect(page.locator("h1")).to_have_text("无权访问")
        await context.close()
