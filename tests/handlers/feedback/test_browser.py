"""The survey in a real browser (headless Chromium through Playwright) on a phone-sized screen:
the customer taps the link their manager sent, lands on the form (via the radar's counted
redirect), is told to pick a score when they submit without one, picks 4, writes a comment, and
sees the thank-you page; the answer is stored for them. Set SCREENSHOTS_DIR to keep screenshots."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser, expect
from sqlalchemy import select

from handlers.feedback.models import FeedbackAnswer
from tests.handlers.feedback.support import sent_links, survey_stack
from tests.support.web import free_port, screenshots_dir

PHONE = {"width": 375, "height": 740}


async def test_a_customer_answers_on_a_phone(sqlite_url: str, tmp_path: Path, browser: Browser) -> None:
    port = free_port()
    async with survey_stack(sqlite_url, tmp_path, port=port) as b:
        links = await sent_links(b)
        link = links["wmAlice"].replace("http://127.0.0.1:8080", f"http://127.0.0.1:{port}")
        context = await browser.new_context(locale="zh-CN", viewport=PHONE)
        page = await context.new_page()
        await page.goto(link)
        await expect(page.locator("#question")).to_have_text("您有多大可能把我行推荐给亲友或同事？")
        assert page.url.startswith(f"http://127.0.0.1:{port}/f/")
        # No horizontal scrolling on a phone: the eleven scores wrap.
        assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        await page.screenshot(path=str(screenshots_dir(tmp_path) / "feedback-form.png"), full_page=True)

        # The browser itself asks for a score first (required radio): nothing is posted.
        await page.get_by_role("button", name="提交").click()
        await expect(page.locator("#question")).to_be_visible()
        async with b.runtime.sessions() as s:
            assert (await s.scalars(select(FeedbackAnswer))).all() == []

        await page.get_by_label("4", exact=True).check()
        await page.locator("#comment").fill("柜台等候时间太长")
        await page.get_by_role("button", name="提交").click()
        await expect(page.locator("#thanks h1")).to_have_text("感谢您的反馈！您的客户经理会认真对待每一条建议。")
        await page.screenshot(path=str(screenshots_dir(tmp_path) / "feedback-thanks.png"), full_page=True)

        async with b.runtime.sessions() as s:
            (row,) = (await s.scalars(select(FeedbackAnswer))).all()
        assert (row.external_userid, row.score, row.category, row.comment) == ("wmAlice", 4, "detractor",
                                                                                 "柜台等候时间太长")
        await context.close()
