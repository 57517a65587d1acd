"""The chat toolbar in a real browser (headless Chromium through Playwright), inside the sandbox's
emulated WeCom webview: the harness opens the toolbar for a member beside a chat, the page signs
in through OAuth, registers with a signature the harness checks against the jsapi ticket, asks
which chat it is in, and shows the panels; a task is settled and a material sent from there.
Set SCREENSHOTS_DIR to keep screenshots of the panels (the README's)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

from playwright.async_api import Browser, Page, expect
from sqlalchemy import select

from handlers.compliance.models import CustomerConsent
from handlers.contacts.models import Customer, Follow
from handlers.sop.api import SopTask
from handlers.timeline.models import Timeline
from tests.handlers.sidebar.support import AUM_FIGURES, SH, seed, sidebar_stack, transfer_card
from tests.support.playbooks import REPO
from tests.support.stack import Stack
from tests.support.web import free_port, screenshots_dir

PHONE = {"width": 380, "height": 900}  # the toolbar is a narrow webview
NEW_CONTACT = (REPO / "sop" / "paths" / "new-contact.yaml").read_text()


async def open_toolbar(browser: Browser, s: Stack, base: str, member: str, **chat: str) -> Page:
    """A fresh WeCom app for ``member`` with the toolbar open beside ``customer=`` or ``chat=``."""
    context = await browser.new_context(locale="zh-CN", viewport=PHONE)
    page = await context.new_page()
    query = urlencode({"member": member, **chat, "target": f"{base}/sidebar/"})
    await page.goto(f"{s.sandbox_base}/sandbox/webview?{query}")
    # WeCom's OAuth leaves its #wechat_redirect on the page's address; the page signs it without.
    await expect(page).to_have_url(re.compile(rf"^{re.escape(base)}/sidebar/(#wechat_redirect)?$"))
    return page


async def test_a_manager_works_a_customer_from_the_chat_toolbar(sqlite_url: str, tmp_path: Path,
                                                               browser: Browser) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with sidebar_stack(sqlite_url, tmp_path, port=port) as s:
        demo = await seed(s)
        card = await transfer_card(s)
        # She opened a link her manager sent her earlier: the panel's history shows it.
        await s.open(s.links.make_link("s-weekly", "zhangwei", customer=demo.wangfang))
        await s.run()
        page = await open_toolbar(browser, s, base, "zhangwei", customer=demo.wangfang)
        await expect(page.locator("#who-name")).to_contain_text("王芳")
        await expect(page.locator("#tier")).to_have_text("V3")
        await expect(page.locator("#aum")).to_have_text("50万-600万")
        await expect(page.locator("#tags")).to_contain_text("兴趣/理财")
        await expect(page.locator("#tasks")).to_contain_text("大额转出")
        await expect(page.locator("#history")).to_contain_text("打开了链接：本周理财精选")
        await expect(page.locator("#offers .offer").first).to_contain_text("任务话术")
        html = await page.content()
        assert not any(figure in html for figure in AUM_FIGURES)
        # The harness checked the page's agentConfig against the live ticket before answering.
        assert [c.ok for c in s.state.jssdk.checks] == [True]
        await page.screenshot(path=str(screenshots_dir(tmp_path) / "sidebar-customer.png"), full_page=True)

        # Done, right beside the chat: the same state as the card's button, and the card shows it.
        task = page.locator(f"#task-{card.task_id}")
        await task.get_by_role("button", name="完成").click()
        await expect(task.locator(".task-status")).to_have_text("已完成")
        await s.send()
        assert card.updates == [{"button": {"replace_name": "已完成"}}]
        async with s.runtime.sessions() as db:
            assert (await db.get(SopTask, card.task_id)).status == "done"  # type: ignore[union-attr]

        # One tap sends the approved material into the chat; the send is recorded.
        offer = page.locator('.offer[data-material="s-weekly"]')
        await offer.get_by_role("button", name="发送").click()
        await expect(offer.locator(".sent-note")).to_have_text("已发送")
        sent = s.state.jssdk.sends_to(customer=demo.wangfang)
        assert [m.message["msgtype"] for m in sent] == ["text", "news"]
        claims = s.links.claims_of(sent[1].message["news"]["link"])
        assert claims is not None and (claims.material, claims.customer, claims.sender) == (
            "s-weekly", demo.wangfang, "zhangwei")
        async with s.runtime.sessions() as db:
            contact = await db.scalar(select(Follow.last_contact_at).where(
                Follow.userid == "zhangwei", Follow.external_userid == demo.wangfang))
        assert contact == s.clock.now()
        # Expired and unapproved materials are never offered.
        for material in ("s-expired", "s-unapproved", "s-not-yet"):
            await expect(page.locator(f'.offer[data-material="{material}"]')).to_have_count(0)
        await page.context.close()


async def test_someone_elses_customer_is_refused_and_a_group_shows(sqlite_url: str, tmp_path: Path,
                                                                   browser: Browser) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with sidebar_stack(sqlite_url, tmp_path, port=port) as s:
        demo = await seed(s)
        page = await open_toolbar(browser, s, base, "lina", customer=demo.wangfang)
        await expect(page.locator("#refused")).to_contain_text("只有这位客户的客户经理")
        await expect(page.locator("#who")).to_have_count(0)
        await page.context.close()

        page = await open_toolbar(browser, s, base, "zhangwei", chat=demo.payroll_group)
        await expect(page.locator("#group-name")).to_have_text("代发工资群")
        await expect(page.locator("#group-type")).to_have_text("代发企业福利群")
        await expect(page.locator("#group-changes")).to_contain_text("孙丽 退群")
        await page.screenshot(path=str(screenshots_dir(tmp_path) / "sidebar-group.png"), full_page=True)
        offer = page.locator('.offer[data-material="s-group-hello"]')
        await offer.get_by_role("button", name="发送").click()
        await expect(offer.locator(".sent-note")).to_have_text("已发送")
        assert [m.message for m in s.state.jssdk.sends_to(chat=demo.payroll_group)] == [
            {"msgtype": "text", "text": {"content": "欢迎来到代发工资群，我是张伟。"}}]
        await page.context.close()


async def test_edit_a_tag_see_what_is_coming_and_send_an_image(sqlite_url: str, tmp_path: Path,
                                                               browser: Browser) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with sidebar_stack(sqlite_url, tmp_path, port=port, paths={"new-contact": NEW_CONTACT}) as s:
        demo = await seed(s)
        page = await open_toolbar(browser, s, base, "zhangwei", customer=demo.wangfang)
        await expect(page.locator("#who-name")).to_contain_text("王芳")
        # Tags: the manager-owned ones toggle; the CRM's groups are shown as read-only, no button.
        editor = page.locator("#tag-editor")
        await editor.locator("summary").click()
        await expect(editor.locator('[data-tag^="客户等级/"]')).to_have_count(0)
        await expect(editor.locator("#crm-groups")).to_contain_text("客户等级")
        health = editor.locator('[data-tag="兴趣/健康"]')
        await expect(health).to_have_attribute("aria-pressed", "false")
        await health.click()
        await expect(health).to_have_attribute("aria-pressed", "true")
        await expect(page.locator("#tags")).to_contain_text("兴趣/健康")
        await s.send()
        assert s.ids.tags["兴趣/健康"] in s.tag_ids("zhangwei", demo.wangfang)  # in WeCom

        # She tells him she wants no more wealth marketing: one tap records it, the panel reloads.
        consent = page.locator("#consent")
        await consent.locator("summary").click()
        wealth = consent.locator('[data-consent="wealth"]')
        await expect(wealth).to_have_attribute("aria-pressed", "true")  # never asked: the default
        await wealth.click()
        await expect(page.locator('#consent [data-consent="wealth"]')).to_have_attribute("aria-pressed", "false")
        await expect(page.locator('#consent [data-consent="wealth"]')).to_contain_text("不愿意")
        async with s.runtime.sessions() as db:
            said = (await db.scalars(select(CustomerConsent))).all()
        assert [(c.external_userid, c.category, c.granted, c.source, c.by) for c in said] == [
            (demo.wangfang, "wealth", False, "sidebar", "zhangwei")]

        # An image: the page asks for its media id, sends it into the chat, the send is recorded.
        offer = page.locator('.offer[data-material="s-poster"]')
        await offer.get_by_role("button", name="发送").click()
        await expect(offer.locator(".sent-note")).to_have_text("已发送")
        (sent,) = s.state.jssdk.sends_to(customer=demo.wangfang)
        media_id = sent.message["image"]["mediaid"]
        assert (sent.message["msgtype"], sent.media_file) == ("image", "help.png")
        async with s.runtime.sessions() as db:
            entry = await db.scalar(select(Timeline).where(Timeline.subject_id == demo.wangfang,
                                                           Timeline.kind == "sidebar.send"))
        assert entry is not None and (entry.detail["material"], entry.detail["mediaid"]) == ("s-poster", media_id)
        await page.context.close()

        # A customer added this morning: the new-contact path's next sends show under 即将推送.
        zhaomin = s.ids.customers["赵敏"]
        added = s.clock.now() - timedelta(hours=1)
        async with s.runtime.sessions() as db, db.begin():
            db.add_all([Customer(external_userid=zhaomin, name="赵敏", updated_at=added),
                        Follow(userid="zhangwei", external_userid=zhaomin, add_way=1, created_at=added)])
        page = await open_toolbar(browser, s, base, "zhangwei", customer=zhaomin)
        day1 = (added + timedelta(days=1)).astimezone(SH).strftime("%m-%d") + " 10:00"  # "added_at + 1 day" at 10:00
        await expect(page.locator('#upcoming li[data-material="new-contact-day1"]')).to_contain_text(day1)
        await page.screenshot(path=str(screenshots_dir(tmp_path) / "sidebar-upcoming.png"), full_page=True)
        await page.context.close()
